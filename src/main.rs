use clap::Parser;

fn main() {
    let cli = perfspec::cli::Cli::parse_from(std::env::args_os());
    std::process::exit(perfspec::cli::main_with(cli));
}
