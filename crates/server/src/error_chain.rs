//! An error with its whole chain of causes as one line, for logs and the CLI's one-line errors.

/// An error and its causes on one line, `outer: cause: root cause`.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
