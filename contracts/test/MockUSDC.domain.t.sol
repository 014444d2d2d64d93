// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";
import {MockUSDC} from "../src/MockUSDC.sol";

/// MockUSDC's EIP-712 domain follows its constructor's name and version, as Circle's USDC follows its
/// `name` ("USDC" on Base Sepolia, "USD Coin" on Base and Ethereum): a signature is valid only in the
/// domain of the token that checks it.
contract MockUSDCDomainTest is Test {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    bytes32 internal constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    uint256 internal alicePk = 0xA11CE;
    address internal alice;
    address internal bob = makeAddr("bob");

    function setUp() public {
        alice = vm.addr(alicePk);
        vm.warp(1_700_000_000);
    }

    function _token(string memory name_, string memory version_) internal returns (MockUSDC token) {
        token = new MockUSDC(address(this), name_, version_);
        token.configureMinter(address(this), 1_000e6);
        token.mint(alice, 100e6);
    }

    function _separator(string memory name_, string memory version_, address token)
        internal
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256(bytes(name_)), keccak256(bytes(version_)), block.chainid, token
            )
        );
    }

    function _checkDomain(string memory name_, string memory version_) internal {
        MockUSDC token = _token(name_, version_);
        assertEq(token.name(), name_);
        assertEq(token.version(), version_);
        assertEq(token.symbol(), "USDC");
        assertEq(token.decimals(), 6);
        assertEq(token.DOMAIN_SEPARATOR(), _separator(name_, version_, address(token)));
        (, string memory dName, string memory dVersion, uint256 chainId, address verifying,,) =
            token.eip712Domain();
        assertEq(dName, name_);
        assertEq(dVersion, version_);
        assertEq(chainId, block.chainid);
        assertEq(verifying, address(token));
    }

    function test_domain_usdcOnBaseSepolia() public {
        _checkDomain("USDC", "2");
    }

    function test_domain_otherNameAndVersion() public {
        _checkDomain("Farthing Test Dollar", "7");
    }

    function _authDigest(bytes32 separator, bytes32 nonce) internal view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
                alice,
                bob,
                uint256(3e6),
                block.timestamp - 1,
                block.timestamp + 1 hours,
                nonce
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", separator, structHash));
    }

    /// An authorization signed in the default ("USD Coin", "2") domain is refused by a token named otherwise;
    /// the same one signed in the token's own domain moves exactly its value.
    function test_transferWithAuthorization_onlyInTheTokensDomain() public {
        MockUSDC token = _token("Farthing Test Dollar", "7");
        bytes32 nonce = keccak256("n1");
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(alicePk, _authDigest(_separator("USD Coin", "2", address(token)), nonce));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(
            alice, bob, 3e6, block.timestamp - 1, block.timestamp + 1 hours, nonce, v, r, s
        );

        (v, r, s) = vm.sign(alicePk, _authDigest(token.DOMAIN_SEPARATOR(), nonce));
        token.transferWithAuthorization(
            alice, bob, 3e6, block.timestamp - 1, block.timestamp + 1 hours, nonce, v, r, s
        );
        assertEq(token.balanceOf(alice), 97e6);
        assertEq(token.balanceOf(bob), 3e6);
        assertTrue(token.authorizationState(alice, nonce));
    }

    /// A permit signed with the wrong version is refused; with the token's own version it sets the allowance.
    function test_permit_onlyInTheTokensDomain() public {
        MockUSDC token = _token("USDC", "2");
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash =
            keccak256(abi.encode(token.PERMIT_TYPEHASH(), alice, bob, uint256(5e6), 0, deadline));
        bytes32 wrong =
            keccak256(abi.encodePacked("\x19\x01", _separator("USDC", "1", address(token)), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, wrong);
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        token.permit(alice, bob, 5e6, deadline, v, r, s);

        bytes32 right = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        (v, r, s) = vm.sign(alicePk, right);
        token.permit(alice, bob, 5e6, deadline, v, r, s);
        assertEq(token.allowance(alice, bob), 5e6);
        assertEq(token.nonces(alice), 1);
    }
}
