//! `json_lines(path)`: one JSON object per result appended to a file, or
//! written to stdout for `"-"`. The file is opened for each batch, so a
//! log rotation (move, then the file reappears) needs no signal.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use super::result::PassiveResult;
use super::sink::{DeliveryError, Sink};

pub struct JsonLines {
    pub path: PathBuf,
}

impl Sink for JsonLines {
    fn batch_size(&self) -> usize {
        500
    }

    fn deliver(&mut self, batch: &[PassiveResult]) -> Result<usize, DeliveryError> {
        let mut text = String::new();
        for r in batch {
            text.push_str(&r.to_json());
            text.push('\n');
        }
        let written = if self.path.as_os_str() == "-" {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|_| out.flush())
        } else {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
        };
        written.map(|_| 0).map_err(|e| {
            DeliveryError::none(format!(
                "cannot append to {}: {e} (check that the folder exists and is writable by picomon)",
                self.path.display()
            ))
        })
    }
}
