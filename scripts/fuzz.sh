#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz / libFuzzer) of every wire frame decoder (`wire`), every
# stored-record decoder (`records`), the channel state machine's input sequences
# (`channel`), the encrypted link's reader (`noise_frames`) and the credential token decoders
# (`credential_token`). Each target runs for SECONDS (default 60); a crash stops the script with the input saved under fuzz/artifacts/TARGET/. Corpora grow in fuzz/corpus/ (not committed).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Not part of scripts/test.sh (it takes minutes). Needs a nightly toolchain for the sanitizer
# flags; without one it falls back to RUSTC_BOOTSTRAP=1 on stable. Installs cargo-fuzz from
# crates.io if missing (~30 s).
source "$(dirname "$0")/lib.sh"

seconds="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(wire records channel noise_frames credential_token)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked || die "cannot install cargo-fuzz"
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  note "no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
# Sanitizer-instrumented builds must not share the workspace's target dir.
export CARGO_TARGET_DIR="${FARTHING_FUZZ_TARGET_DIR:-$HOME/.cache/farthing/fuzz-target}"
cd "$ROOT/fuzz"
for target in "${targets[@]}"; do
  note "fuzzing $target for $seconds s"
  "${fuzz[@]}" run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 |
    grep -E '^(#[0-9]+ +DONE|Done)|ERROR|panicked|SUMMARY' || true
  [[ "${PIPESTATUS[0]}" == 0 ]] || die "fuzz target $target failed: the input is in fuzz/artifacts/$target/"
done
note "fuzzing done: no crash"
