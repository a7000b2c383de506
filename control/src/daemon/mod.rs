//! The daemon shell around the sans-IO engine: UDP sockets on ports 500 and 4500 for both
//! address families, signals, and the single poll loop that feeds datagrams and timer expiries
//! to the engine and sends what it returns.

pub mod signals;
pub mod udp;
