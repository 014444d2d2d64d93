//! `farthing peers` as a table for people (`--json` prints the RPC's answer as it is).

/// One line per peer: linked, kept, dial address, shared channels, the last dial error.
pub(crate) fn table(peers: &[farthing_rpc::PeerView]) -> String {
    let mut out = format!(
        "{:<42} {:<6} {:<5} {:<21} {:>8}  {}",
        "peer", "linked", "kept", "dial", "channels", "last error"
    );
    for p in peers {
        let channels: Vec<String> = p.channels.iter().map(u64::to_string).collect();
        out.push_str(&format!(
            "\n{:<42} {:<6} {:<5} {:<21} {:>8}  {}",
            p.address.to_string(),
            if p.linked { "yes" } else { "no" },
            if p.kept { "yes" } else { "no" },
            p.dial.as_deref().unwrap_or("-"),
            if channels.is_empty() {
                "-".to_owned()
            } else {
                channels.join(",")
            },
            match (&p.last_error, p.next_dial_in_secs) {
                (Some(e), Some(next)) => {
                    format!("{e} ({} failed, next dial in {next} s)", p.failed_dials)
                }
                (Some(e), None) => e.clone(),
                (None, _) => String::new(),
            }
        ));
    }
    if peers.is_empty() {
        out.push_str("\n(no peers)");
    }
    out
}
