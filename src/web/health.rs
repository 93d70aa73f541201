//! `GET /api/v1/health`: 200 when this picomon can tell anyone, 503 with
//! the reason when not (the rule is [`crate::health`]). Answered from the
//! board the loop publishes, without asking the loop: a stuck loop gets a
//! 503 here, not a timeout.

use super::server::Reply;

pub const PATH: &str = "/api/v1/health";

/// The answer, as of now.
pub(crate) fn reply() -> Reply {
    render(&crate::health::board().health())
}

fn render(h: &crate::health::Health) -> Reply {
    let mut body = serde_json::to_vec_pretty(h).unwrap_or_default();
    body.push(b'\n');
    Reply {
        code: if h.ok { 200 } else { 503 },
        content_type: "application/json",
        body: body.into(),
        extra: "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{judge, Facts};
    use std::time::Duration;

    #[test]
    fn not_ok_is_a_503_with_the_same_body_and_the_reason() {
        let f = Facts {
            base_tick: Duration::from_secs(1),
            smtp_retry_timeout: Duration::from_secs(1),
            ..Facts::default()
        };
        let ok = render(&judge(&f, Some(Duration::from_secs(1)), 0));
        assert_eq!(ok.code, 200);
        let body: serde_json::Value = serde_json::from_slice(&ok.body.to_vec()).unwrap();
        assert_eq!(body["ok"], true);
        for key in ["version", "last_tick_age", "mail", "problems"] {
            assert!(body.get(key).is_some(), "{key} missing: {body}");
        }
        let late = render(&judge(&f, Some(Duration::from_secs(60)), 0));
        assert_eq!(late.code, 503);
        let body: serde_json::Value = serde_json::from_slice(&late.body.to_vec()).unwrap();
        assert_eq!(body["ok"], false);
        assert!(body["reason"].as_str().unwrap().contains("stuck"), "{body}");
    }
}
