//! memcached tiers: real nodes perfspec starts (or is given), placed by perfspec's own
//! client ring (ketama, rendezvous, modula) or by a twemproxy (`nutcracker`) in front.

pub mod cluster;
mod md5;
pub mod metrics;
pub mod protocol;
pub mod ring;
pub mod server;
pub mod tier;
