//! What every output kind implements: deliver a batch of results, in order,
//! or say how far it got and why it stopped.

use super::result::PassiveResult;

/// A delivery that stopped part-way: the first `delivered` results were
/// handled (`refused` of them refused for good by the server, as in
/// [`Sink::deliver`]'s `Ok`), the rest wait for the next attempt.
#[derive(Debug)]
pub struct DeliveryError {
    pub delivered: usize,
    pub refused: usize,
    pub message: String,
}

impl DeliveryError {
    pub fn none(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            delivered: 0,
            refused: 0,
            message: message.into(),
        }
    }
}

/// One kind of output (json_lines, NSCA-web, command file, Icinga 2 API,
/// Redis, Elasticsearch).
pub trait Sink: Send {
    /// How many results one [`Sink::deliver`] call takes at most.
    fn batch_size(&self) -> usize;

    /// Delivers `batch` in order. `Ok(n)`: all handled, `n` of them refused
    /// for good by the server (an unknown service, say: retrying cannot
    /// help, so they are logged and not kept).
    fn deliver(&mut self, batch: &[PassiveResult]) -> Result<usize, DeliveryError>;
}
