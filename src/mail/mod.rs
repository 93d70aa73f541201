//! Mail: composition, the durable outbox, SMTP delivery.
