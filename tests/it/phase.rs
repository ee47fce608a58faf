//! Phase-file parsing: what agents really write, and what they get wrong.

use forgehand::phase::{Phase, PhaseError, PhaseReport, parse};

fn ok(phase: Phase, reason: Option<&str>) -> Result<PhaseReport, PhaseError> {
    Ok(PhaseReport {
        phase,
        reason: reason.map(String::from),
    })
}

#[test]
fn every_known_phase_parses() {
    for p in Phase::ALL {
        assert_eq!(parse(&format!("PHASE:{}\n", p.as_str())), ok(p, None));
    }
}

#[test]
fn reason_on_line_two() {
    assert_eq!(
        parse("PHASE:escalate\nReason: which database?\n"),
        ok(Phase::Escalate, Some("which database?"))
    );
}

#[test]
fn multi_line_reason_is_kept_whole() {
    assert_eq!(
        parse("PHASE:failed\nReason: tests hang\nsee scratch.md\n"),
        ok(Phase::Failed, Some("tests hang\nsee scratch.md"))
    );
}

#[test]
fn crlf_and_bom_are_tolerated() {
    assert_eq!(
        parse("\u{feff}PHASE:awaiting_ci\r\n"),
        ok(Phase::AwaitingCi, None)
    );
    assert_eq!(
        parse("PHASE:failed\r\nReason: refused\r\n"),
        ok(Phase::Failed, Some("refused"))
    );
}

#[test]
fn surrounding_blank_space_is_tolerated() {
    assert_eq!(
        parse("\n\n  PHASE:awaiting_review  \n\n"),
        ok(Phase::AwaitingReview, None)
    );
    assert_eq!(parse("PHASE: awaiting_ci"), ok(Phase::AwaitingCi, None));
}

#[test]
fn empty_file_is_not_an_error_to_report() {
    assert_eq!(parse(""), Err(PhaseError::Empty));
    assert_eq!(parse("\n \r\n"), Err(PhaseError::Empty));
    assert_eq!(parse("\u{feff}"), Err(PhaseError::Empty));
}

#[test]
fn unknown_phase_is_reported_not_guessed() {
    assert_eq!(parse("PHASE:done"), Err(PhaseError::Unknown("done".into())));
    assert_eq!(
        parse("PHASE:AWAITING_CI"),
        Err(PhaseError::Unknown("AWAITING_CI".into()))
    );
    assert_eq!(
        parse("PHASE:awaiting-ci"),
        Err(PhaseError::Unknown("awaiting-ci".into()))
    );
    let err = parse("PHASE:done").unwrap_err().to_string();
    assert!(
        err.contains("awaiting_ci"),
        "the error lists the known phases: {err}"
    );
}

#[test]
fn garbage_is_reported() {
    assert!(matches!(
        parse("I am done now"),
        Err(PhaseError::Garbage(_))
    ));
    assert!(matches!(
        parse("phase:awaiting_ci"),
        Err(PhaseError::Garbage(_))
    ));
    assert!(matches!(
        parse("Reason: x\nPHASE:failed"),
        Err(PhaseError::Garbage(_))
    ));
    let long = "x".repeat(10_000);
    let Err(PhaseError::Garbage(quoted)) = parse(&long) else {
        panic!("garbage expected")
    };
    assert!(
        quoted.len() <= 80,
        "bad input is quoted briefly, not echoed whole"
    );
}

#[test]
fn refusal_summaries() {
    use forgehand::phase::{RefusalKind, parse_refusal};
    let r = parse_refusal(r#"{"status": "too_large", "detail": "three features"}"#).unwrap();
    assert_eq!(
        (r.status, r.detail.as_str()),
        (RefusalKind::TooLarge, "three features")
    );
    let fenced = "```json\n{\"status\": \"unmet_dependency\", \"detail\": \"needs #4\"}\n```\n";
    assert_eq!(
        parse_refusal(fenced).unwrap().status,
        RefusalKind::UnmetDependency
    );
    assert_eq!(
        parse_refusal(r#"{"status":"already_done"}"#)
            .unwrap()
            .detail,
        ""
    );
    for bad in [
        "",
        "I refuse",
        r#"{"status": "bored"}"#,
        r#"{"detail": "x"}"#,
    ] {
        let err = parse_refusal(bad).unwrap_err();
        assert!(err.contains("summary.md must hold"), "{bad:?}: {err}");
    }
}
