use super::*;

fn args(words: &[&str]) -> GetArgs {
    let cli =
        crate::cli::parse(["serin", "get"].iter().chain(words).map(|s| s.to_string())).unwrap();
    match cli.command {
        Some(crate::cli::Command::Client(crate::cli::ClientCommand::Get(a))) => a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn resources_and_names() {
    assert_eq!(target(&args(&["canaries"])).unwrap(), Target::List);
    assert_eq!(target(&args(&["canary"])).unwrap(), Target::List);
    assert_eq!(
        target(&args(&["canaries.flagger.app", "-A"])).unwrap(),
        Target::List
    );
    for words in [
        &["canary", "podinfo"][..],
        &["canaries", "podinfo"],
        &["canary/podinfo"],
    ] {
        assert_eq!(
            target(&args(words)).unwrap(),
            Target::One("podinfo".into()),
            "{words:?}"
        );
    }
}

#[test]
fn usage_errors() {
    for (words, want) in [
        (
            &["deployments"][..],
            "serin gets canaries, not \"deployments\"",
        ),
        (&["canary", "podinfo", "-A"], "across all namespaces"),
        (&["canary/a", "b"], "give the name once"),
        (&["canaries", "-w"], "--watch needs a canary's name"),
    ] {
        let e = target(&args(words)).unwrap_err().to_string();
        assert!(e.contains(want), "{words:?}: {e}");
    }
}
