//! Datasets for quantize specs: a CSV (feature columns + a label column) or a pair of `.npy`
//! arrays, scaled, then split into train and test sets with a seeded shuffle.

use std::path::Path;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Samples as a dense row-major `[rows, dim]` matrix and one class index per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub features: Vec<f32>,
    pub labels: Vec<i64>,
    pub dim: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        let mut features = Vec::with_capacity(idx.len() * self.dim);
        let mut labels = Vec::with_capacity(idx.len());
        for &i in idx {
            features.extend_from_slice(self.row(i));
            labels.push(self.labels[i]);
        }
        Dataset {
            features,
            labels,
            dim: self.dim,
        }
    }

    /// Multiply every feature by `factor`.
    pub fn scale(&mut self, factor: f32) {
        self.features.iter_mut().for_each(|x| *x *= factor);
    }
}

/// A train/test split.
#[derive(Debug, Clone)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
}

/// Shuffle the rows with `seed` and keep the last `test_fraction` of them (at least one row)
/// for testing. The same seed always gives the same split.
pub fn split(data: &Dataset, test_fraction: f64, seed: u64) -> Split {
    let mut idx: Vec<usize> = (0..data.len()).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed));
    let n_test = ((data.len() as f64 * test_fraction).round() as usize)
        .clamp(1, data.len().saturating_sub(1).max(1));
    let (train, test) = idx.split_at(data.len() - n_test);
    Split {
        train: data.select(train),
        test: data.select(test),
    }
}

/// Read a CSV with a header row: every column but `label` is a feature.
pub fn load_csv(path: &Path, label: &str) -> Result<Dataset, String> {
    let mut rdr = csv::Reader::from_path(path)
        .map_err(|e| format!("read dataset {}: {e}", path.display()))?;
    let headers = rdr
        .headers()
        .map_err(|e| format!("read the header of {}: {e}", path.display()))?
        .clone();
    let label_col = headers.iter().position(|h| h == label).ok_or_else(|| {
        format!(
            "dataset {} has no label column `{label}` (columns: {})",
            path.display(),
            headers.len()
        )
    })?;
    let dim = headers.len() - 1;
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| format!("read {} row {}: {e}", path.display(), row + 2))?;
        if rec.len() != headers.len() {
            return Err(format!(
                "{} row {} has {} columns, the header {}",
                path.display(),
                row + 2,
                rec.len(),
                headers.len()
            ));
        }
        for (col, field) in rec.iter().enumerate() {
            let v: f64 = field.trim().parse().map_err(|_| {
                format!(
                    "{} row {} column `{}`: `{field}` is not a number",
                    path.display(),
                    row + 2,
                    &headers[col]
                )
            })?;
            if col == label_col {
                labels.push(
                    class_index(v)
                        .map_err(|e| format!("{} row {}: {e}", path.display(), row + 2))?,
                );
            } else {
                features.push(v as f32);
            }
        }
    }
    if labels.is_empty() {
        return Err(format!("dataset {} has no rows", path.display()));
    }
    Ok(Dataset {
        features,
        labels,
        dim,
    })
}

fn class_index(v: f64) -> Result<i64, String> {
    if v >= 0.0 && v.fract() == 0.0 && v < i64::MAX as f64 {
        Ok(v as i64)
    } else {
        Err(format!(
            "label `{v}` is not a class index (a non-negative integer)"
        ))
    }
}

/// A parsed `.npy` array: its shape and values as `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Npy {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

/// Parse a little-endian, C-ordered `.npy` file (format 1.0–3.0) of `f4`, `f8`, `i1`–`i8` or
/// `u1`–`u8` values.
pub fn parse_npy(bytes: &[u8]) -> Result<Npy, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "the .npy header is not text")?;
    fn value_of<'a>(header: &'a str, key: &str) -> Result<&'a str, String> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| format!("the .npy header has no `{key}`"))?;
        Ok(header[at + key.len() + 2..]
            .trim_start()
            .trim_start_matches(':')
            .trim_start())
    }
    let field = |key: &str| value_of(header, key);
    let descr = field("descr")?;
    let descr = descr.trim_start_matches('\'');
    let descr = &descr[..descr.find('\'').ok_or("bad .npy descr")?];
    if field("fortran_order")?.starts_with("True") {
        return Err("Fortran-ordered .npy arrays are not supported".into());
    }
    let shape_txt = field("shape")?;
    let shape_txt = &shape_txt[1..shape_txt.find(')').ok_or("bad .npy shape")?];
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("bad .npy dimension `{s}`")))
        .collect::<Result<_, String>>()?;
    let count: usize = shape.iter().product();
    let data = &bytes[start + header_len..];
    let (kind, size) = match descr.as_bytes() {
        [b'<' | b'|' | b'=', k, rest @ ..] => (
            *k,
            std::str::from_utf8(rest)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0),
        ),
        _ => {
            return Err(format!(
                "unsupported .npy dtype `{descr}` (little-endian only)"
            ));
        }
    };
    if data.len() < count * size || size == 0 {
        return Err(format!(
            "the .npy data is shorter than its shape {shape:?} of `{descr}`"
        ));
    }
    let values = data[..count * size]
        .chunks_exact(size)
        .map(|c| {
            Ok(match (kind, size) {
                (b'f', 4) => f32::from_le_bytes(c.try_into().unwrap_or_default()) as f64,
                (b'f', 8) => f64::from_le_bytes(c.try_into().unwrap_or_default()),
                (b'i', 1) => c[0] as i8 as f64,
                (b'u', 1) => c[0] as f64,
                (b'i', 2) => i16::from_le_bytes([c[0], c[1]]) as f64,
                (b'u', 2) => u16::from_le_bytes([c[0], c[1]]) as f64,
                (b'i', 4) => i32::from_le_bytes(c.try_into().unwrap_or_default()) as f64,
                (b'u', 4) => u32::from_le_bytes(c.try_into().unwrap_or_default()) as f64,
                (b'i', 8) => i64::from_le_bytes(c.try_into().unwrap_or_default()) as f64,
                (b'u', 8) => u64::from_le_bytes(c.try_into().unwrap_or_default()) as f64,
                _ => return Err(format!("unsupported .npy dtype `{descr}`")),
            })
        })
        .collect::<Result<Vec<f64>, String>>()?;
    Ok(Npy { shape, values })
}

/// Load features (`[rows, dim]`, or `[rows, h, w]` flattened) and labels (`[rows]`).
pub fn load_npy(features: &Path, labels: &Path) -> Result<Dataset, String> {
    let read = |p: &Path| -> Result<Npy, String> {
        let bytes = std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display()))?;
        parse_npy(&bytes).map_err(|e| format!("{}: {e}", p.display()))
    };
    let x = read(features)?;
    let y = read(labels)?;
    if x.shape.is_empty() || y.shape.len() != 1 || x.shape[0] != y.shape[0] {
        return Err(format!(
            "features shape {:?} and labels shape {:?} do not agree (want [rows, …] and [rows])",
            x.shape, y.shape
        ));
    }
    let dim = x.shape[1..].iter().product();
    let labels = y
        .values
        .iter()
        .map(|&v| class_index(v))
        .collect::<Result<_, _>>()?;
    Ok(Dataset {
        features: x.values.iter().map(|&v| v as f32).collect(),
        labels,
        dim,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Dataset {
        Dataset {
            features: (0..n * 2).map(|i| i as f32).collect(),
            labels: (0..n as i64).collect(),
            dim: 2,
        }
    }

    #[test]
    fn split_is_deterministic_per_seed_and_a_partition() {
        let d = toy(100);
        let a = split(&d, 0.25, 7);
        let b = split(&d, 0.25, 7);
        assert_eq!(a.test, b.test);
        assert_eq!(a.train, b.train);
        assert_eq!(a.test.len(), 25);
        assert_eq!(a.train.len(), 75);
        let mut all: Vec<i64> = a
            .train
            .labels
            .iter()
            .chain(&a.test.labels)
            .copied()
            .collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        // rows stay whole
        for (i, &l) in a.test.labels.iter().enumerate() {
            assert_eq!(a.test.row(i), &[2.0 * l as f32, 2.0 * l as f32 + 1.0]);
        }
        assert_ne!(split(&d, 0.25, 8).test, a.test);
    }

    #[test]
    fn npy_round_trip() {
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        bytes.extend((h.len() as u16).to_le_bytes());
        bytes.extend(h.as_bytes());
        for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.5] {
            bytes.extend(v.to_le_bytes());
        }
        let npy = parse_npy(&bytes).unwrap();
        assert_eq!(npy.shape, vec![2, 3]);
        assert_eq!(npy.values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
    }

    #[test]
    fn digits_csv_loads() {
        let d = load_csv(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/data/digits.csv"),
            "label",
        )
        .unwrap();
        assert_eq!(d.len(), 1797);
        assert_eq!(d.dim, 64);
        assert!(d.labels.iter().all(|l| (0..10).contains(l)));
    }
}
