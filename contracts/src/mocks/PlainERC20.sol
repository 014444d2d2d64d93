// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @notice A plain OpenZeppelin ERC-20 with EIP-2612 and 6 decimals, for DEVNETS ONLY: anyone
/// may mint. It exists to measure what the channel contract costs apart from USDC's extra
/// checks (pause, blacklist, allowance always decremented), the way Raiden measured with a
/// plain token.
contract PlainERC20 is ERC20, ERC20Permit {
    constructor() ERC20("Plain Test Dollar", "PTD") ERC20Permit("Plain Test Dollar") {}

    /// @notice 6 decimals, like USDC.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mint `amount` to `to`. Unrestricted: test token.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
