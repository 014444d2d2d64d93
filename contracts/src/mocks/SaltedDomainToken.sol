// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A 6-decimal ERC-20 named like USDC whose EIP-712 domain is not the standard one: like
/// the bridged USDC on Polygon PoS, it puts the chain id in a `salt` and leaves `chainId` out.
/// For DEVNETS ONLY (anyone may mint). It exists so that tests can show the node and
/// `scripts/deploy.sh` refuse a token whose `DOMAIN_SEPARATOR()` is not
/// keccak(EIP712Domain(name, version, chainId, token)): nothing they signed would verify.
contract SaltedDomainToken is ERC20 {
    constructor() ERC20("USDC", "USDC") {}

    /// @notice 6 decimals, like USDC.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice The EIP-712 domain version.
    /// @return "2", as USDC's.
    function version() external pure returns (string memory) {
        return "2";
    }

    /// @notice keccak(EIP712Domain(name, version, verifyingContract, salt = chain id)).
    /// @return The domain separator.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,address verifyingContract,bytes32 salt)"),
                keccak256(bytes(name())),
                keccak256("2"),
                address(this),
                bytes32(block.chainid)
            )
        );
    }

    /// @notice Mint `amount` to `to`. Unrestricted: test token.
    /// @param to The receiver.
    /// @param amount Base units.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
