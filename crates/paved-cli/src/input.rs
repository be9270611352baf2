//! Input files the user names: `-` is standard input; a file that cannot be read is bad input
//! with a hint ([`paved::Error::unreadable_file`]).

use std::io::BufRead;
use std::path::Path;

use paved::{Error, Result};

/// Opens `path` for reading, or standard input for `-`.
pub(crate) fn open(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::BufReader::new(std::io::stdin())));
    }
    std::fs::File::open(path)
        .map(|f| Box::new(std::io::BufReader::new(f)) as Box<dyn BufRead + Send>)
        .map_err(|e| Error::unreadable_file(path, &e))
}
