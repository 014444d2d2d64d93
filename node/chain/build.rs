//! The contract bindings are generated from forge's build output: fail early, with the command
//! to run, when it is missing, and regenerate them whenever the contracts are rebuilt.

use std::path::Path;

const ARTIFACTS: &[&str] = &[
    "../../contracts/out/ChannelManager.sol/ChannelManager.json",
    "../../contracts/out/MockUSDC.sol/MockUSDC.json",
    "../../contracts/out/PlainERC20.sol/PlainERC20.json",
];

fn main() {
    for artifact in ARTIFACTS {
        println!("cargo:rerun-if-changed={artifact}");
        if !Path::new(artifact).exists() {
            panic!(
                "contract artifact {artifact} is missing: build the contracts first \
                 (scripts/setup.sh && (cd contracts && node_modules/.bin/forge build))"
            );
        }
    }
}
