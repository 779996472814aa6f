//! Any bytes as the body of any command, through the parser the API and the import
//! use (`app::commands::parse_command`): it must never panic, and a refusal must be
//! a client error (4xx) whose message is plain text for a person (no Rust debug
//! output, no SQL, no paths). The first byte picks the command: `create` or one of
//! the actions (and, past them, a name that is no action at all).

#![no_main]

use libfuzzer_sys::fuzz_target;
use yiwang::app::commands::{ACTIONS, parse_command};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let action = match usize::from(pick) % (ACTIONS.len() + 2) {
        0 => "create",
        i if i <= ACTIONS.len() => ACTIONS[i - 1],
        _ => "teleport",
    };
    if let Err(e) = parse_command(action, body) {
        let status = e.status();
        assert!(
            (400..500).contains(&status),
            "{action}: a body was answered {status}: {e}"
        );
        // The message may quote what the client sent (the bad value, to fix it);
        // anything of these it did not send is a leak of the service's insides.
        let text = e.to_string();
        let sent = String::from_utf8_lossy(body);
        for leak in ["SELECT ", "INSERT ", "panicked", "/src/", "Error {", "RUST_BACKTRACE"] {
            assert!(
                !text.contains(leak) || sent.contains(leak),
                "{action}: the message leaks {leak:?}: {text}"
            );
        }
    }
});
