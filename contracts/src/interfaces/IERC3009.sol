// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice The part of EIP-3009 (transfer with authorization, as in USDC) the channel contract uses.
interface IERC3009 {
    /// @notice Move `value` from `from` to the caller (`to` must be the caller), authorized by
    /// `from`'s EIP-712 signature over these parameters.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
}
