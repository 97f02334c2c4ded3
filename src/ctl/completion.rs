//! `serin completion bash|zsh|fish`: clap_complete's scripts.

use std::io::Write;

use clap_complete::Shell;

use super::CtlError;

/// Writes the completion script of `serin` for `shell`.
pub fn run(shell: Shell, out: &mut dyn Write) -> Result<(), CtlError> {
    let mut command = crate::cli::command_named("serin");
    clap_complete::generate(shell, &mut command, "serin", out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_the_commands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            run(shell, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            for word in ["promote", "status", "kubeconfig"] {
                assert!(text.contains(word), "{shell:?} lacks {word}");
            }
        }
    }
}
