//! What the golden tests share.

use std::path::Path;

/// Compares `text`, the printed output for `what`, with the golden file `golden`; with
/// `BLESS` set in the environment it writes `text` there instead.
pub fn check_golden(text: &str, golden: &Path, what: &str) {
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(golden, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(golden)
        .unwrap_or_else(|e| panic!("{}: {e}; run with BLESS=1 to create it", golden.display()));
    assert_eq!(
        text,
        expected,
        "{what} differs from {}; run with BLESS=1 if the change is intended",
        golden.display()
    );
}
