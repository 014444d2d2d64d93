//! The contract bindings are generated from forge's build output: fail early, with the command
//! to run, when it is missing, and regenerate them whenever the contracts are rebuilt.

use std::path::Path;

/// forge's artifacts, relative to the repository root.
const ARTIFACTS: &[&str] = &[
    "contracts/out/ChannelManager.sol/ChannelManager.json",
    "contracts/out/MockUSDC.sol/MockUSDC.json",
    "contracts/out/PlainERC20.sol/PlainERC20.json",
    "contracts/out/SaltedDomainToken.sol/SaltedDomainToken.json",
];

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let root = Path::new(&manifest).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    for artifact in ARTIFACTS {
        let path = root.join(artifact);
        println!("cargo:rerun-if-changed={}", path.display());
        if !path.exists() {
            panic!(
                "\n\n{artifact} is missing: the contract bindings are generated from the compiled \
                 contracts, so build them before cargo. Run:\n\n    \
                 cd {root} && scripts/setup.sh && (cd contracts && node_modules/.bin/forge build)\n\n\
                 then cargo again (scripts/build.sh, scripts/bench.sh, scripts/demo.sh and \
                 scripts/test.sh do all of it).\n\n",
                root = root.display()
            );
        }
    }
}
