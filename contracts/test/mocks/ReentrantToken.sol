// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @notice An ERC-20 (with EIP-2612 permit) that, after every balance move, calls `target` with
/// `reentryData` once and records what happened. With `bubble` set, a reverted reentry makes the
/// token call itself revert with the same data (a token that refuses the transfer).
/// @dev Also offers an EIP-3009-shaped `receiveWithAuthorization` WITHOUT signature checks (only
/// `to == msg.sender`), so `openWithAuthorization` can be driven through the hook. Test use only.
contract ReentrantToken is ERC20Permit {
    address public target;
    bytes public reentryData;
    bool public bubble;

    /// @notice Reentries attempted, and how many of them reverted.
    uint256 public attempts;
    uint256 public refusals;
    /// @notice Revert data of the last refused reentry.
    bytes public lastRevertData;

    bool private _inHook;

    constructor() ERC20("Reentrant", "RE") ERC20Permit("Reentrant") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Call `target_` with `data` on every following balance move; reset the records.
    function arm(address target_, bytes calldata data, bool bubble_) external {
        target = target_;
        reentryData = data;
        bubble = bubble_;
        attempts = 0;
        refusals = 0;
        delete lastRevertData;
    }

    function disarm() external {
        target = address(0);
    }

    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256,
        uint256,
        bytes32,
        uint8,
        bytes32,
        bytes32
    ) external {
        require(to == msg.sender, "caller must be the payee");
        _transfer(from, to, value);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (target == address(0) || _inHook) return;
        _inHook = true;
        (bool ok, bytes memory ret) = target.call(reentryData);
        _inHook = false;
        attempts++;
        if (!ok) {
            refusals++;
            lastRevertData = ret;
            if (bubble) {
                assembly ("memory-safe") {
                    revert(add(ret, 32), mload(ret))
                }
            }
        }
    }
}
