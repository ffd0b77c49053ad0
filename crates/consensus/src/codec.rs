//! One binary encoding (bincode 2, standard config, through serde) for everything this crate
//! persists or sends that is not protobuf: log entries, votes, log ids, membership and peer RPCs.
//! Errors come back as `io::Error` because that is what openraft's storage traits speak.

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encode a value.
pub(crate) fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Decode a value, rejecting trailing bytes so a torn or mixed-up record is noticed.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if used != bytes.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "trailing bytes after record"));
    }
    Ok(value)
}
