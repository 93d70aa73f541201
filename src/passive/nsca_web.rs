//! `nsca_web(url, user, password_file)`: pcrunner's transport. A form POST
//! with the fields `username`, `password` and `input`, where `input` holds
//! up to `lines_per_post` external-command lines, each ending in `\n` and
//! cut to `max_line_size`. Only HTTP 200 means the lines were taken.

use super::result::PassiveResult;
use super::sink::{DeliveryError, Sink};
use crate::net::http;

pub struct NscaWeb {
    pub url: String,
    pub user: String,
    pub password: String,
    pub lines_per_post: usize,
    pub max_line_size: usize,
    pub agent: http::Client,
}

impl NscaWeb {
    pub fn new(
        url: &str,
        user: &str,
        password: String,
        lines_per_post: usize,
        max_line_size: usize,
        agent: http::Client,
    ) -> NscaWeb {
        NscaWeb {
            url: url.to_string(),
            user: user.to_string(),
            password,
            lines_per_post: lines_per_post.max(1),
            max_line_size,
            agent,
        }
    }
}

impl Sink for NscaWeb {
    fn batch_size(&self) -> usize {
        self.lines_per_post
    }

    fn deliver(&mut self, batch: &[PassiveResult]) -> Result<usize, DeliveryError> {
        let mut input = String::new();
        for r in batch {
            input.push_str(&r.command_line(self.max_line_size));
            input.push('\n');
        }
        let resp = self
            .agent
            .post(&self.url)
            .send_form(&[
                ("username", self.user.as_str()),
                ("password", self.password.as_str()),
                ("input", input.as_str()),
            ])
            .map_err(|e| DeliveryError::none(http::describe(&self.url, e)))?;
        if resp.status() != 200 {
            return Err(DeliveryError::none(format!(
                "{} (only 200 means the results were taken)",
                http::refusal(&self.url, resp)
            )));
        }
        Ok(0)
    }
}
