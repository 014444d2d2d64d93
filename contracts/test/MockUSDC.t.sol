// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test, console2} from "forge-std/Test.sol";
import {MockUSDC} from "../src/MockUSDC.sol";

contract MockUSDCTest is Test {
    MockUSDC internal usdc;

    address internal owner = makeAddr("owner");
    address internal minter = makeAddr("minter");
    address internal carol = makeAddr("carol"); // a spender / relayer without keys in use
    uint256 internal alicePk = 0xA11CE;
    uint256 internal bobPk = 0xB0B;
    uint256 internal malloryPk = 0xBAD;
    address internal alice;
    address internal bob;

    uint256 internal constant MINTER_ALLOWANCE = 1_000_000e6;
    uint256 internal constant ALICE_START = 1_000e6;
    uint256 internal constant BOB_START = 500e6;
    uint256 internal constant MAX_BALANCE = (1 << 255) - 1;
    // secp256k1 group order, to build the high-s twin of a signature.
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    bytes internal constant PAUSED = bytes("Pausable: paused");
    bytes internal constant BLACKLISTED = bytes("Blacklistable: account is blacklisted");
    bytes internal constant BAD_3009_SIG = bytes("FiatTokenV2: invalid signature");
    bytes internal constant BAD_PERMIT_SIG = bytes("EIP2612: invalid signature");
    bytes internal constant AUTH_USED = bytes("FiatTokenV2: authorization is used or canceled");

    function setUp() public {
        alice = vm.addr(alicePk);
        bob = vm.addr(bobPk);
        vm.label(alice, "alice");
        vm.label(bob, "bob");
        vm.warp(1_700_000_000);

        usdc = new MockUSDC(owner, "USD Coin", "2");
        vm.prank(owner);
        usdc.configureMinter(minter, MINTER_ALLOWANCE);
        vm.startPrank(minter);
        usdc.mint(alice, ALICE_START);
        usdc.mint(bob, BOB_START);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------------------------------------
    // Signing helpers
    // ---------------------------------------------------------------------------------------------

    function _digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash));
    }

    function _signPermit(
        uint256 pk,
        address holder,
        address spender,
        uint256 value,
        uint256 nonce,
        uint256 deadline
    ) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash = keccak256(
            abi.encode(usdc.PERMIT_TYPEHASH(), holder, spender, value, nonce, deadline)
        );
        return vm.sign(pk, _digest(structHash));
    }

    struct Auth {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    function _auth(uint256 value, bytes32 nonce) internal view returns (Auth memory) {
        return Auth(alice, bob, value, block.timestamp - 1, block.timestamp + 1 hours, nonce);
    }

    function _signAuth(uint256 pk, bytes32 typehash, Auth memory a)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 structHash =
            keccak256(abi.encode(typehash, a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce));
        return vm.sign(pk, _digest(structHash));
    }

    function _signCancel(uint256 pk, address authorizer, bytes32 nonce)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 structHash = keccak256(abi.encode(usdc.CANCEL_AUTHORIZATION_TYPEHASH(), authorizer, nonce));
        return vm.sign(pk, _digest(structHash));
    }

    function _twa(Auth memory a, uint8 v, bytes32 r, bytes32 s) internal {
        usdc.transferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s);
    }

    function _rwa(Auth memory a, uint8 v, bytes32 r, bytes32 s) internal {
        usdc.receiveWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s);
    }

    // ---------------------------------------------------------------------------------------------
    // Metadata and construction
    // ---------------------------------------------------------------------------------------------

    function test_metadata() public view {
        assertEq(usdc.name(), "USD Coin");
        assertEq(usdc.symbol(), "USDC");
        assertEq(usdc.decimals(), 6);
        assertEq(usdc.version(), "2");
        assertEq(usdc.owner(), owner);
        assertFalse(usdc.paused());
        assertEq(usdc.totalSupply(), ALICE_START + BOB_START);
        assertEq(usdc.balanceOf(alice), ALICE_START);
        assertEq(usdc.balanceOf(bob), BOB_START);
        // FiatTokenV2 blacklists the token contract itself.
        assertTrue(usdc.isBlacklisted(address(usdc)));
    }

    function test_typehashesMatchEip() public view {
        assertEq(
            usdc.PERMIT_TYPEHASH(),
            keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)")
        );
        assertEq(usdc.PERMIT_TYPEHASH(), 0x6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9);
        assertEq(
            usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(),
            keccak256(
                "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
            )
        );
        assertEq(
            usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(),
            0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267
        );
        assertEq(
            usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(),
            keccak256(
                "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
            )
        );
        assertEq(
            usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(),
            0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8
        );
        assertEq(
            usdc.CANCEL_AUTHORIZATION_TYPEHASH(),
            keccak256("CancelAuthorization(address authorizer,bytes32 nonce)")
        );
        assertEq(
            usdc.CANCEL_AUTHORIZATION_TYPEHASH(),
            0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429
        );
    }

    function test_domainSeparator() public {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("USD Coin"),
                keccak256("2"),
                block.chainid,
                address(usdc)
            )
        );
        assertEq(usdc.DOMAIN_SEPARATOR(), expected);
        // Follows the chain id (fork safety).
        vm.chainId(8453);
        assertEq(
            usdc.DOMAIN_SEPARATOR(),
            keccak256(
                abi.encode(
                    keccak256(
                        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                    ),
                    keccak256("USD Coin"),
                    keccak256("2"),
                    uint256(8453),
                    address(usdc)
                )
            )
        );
    }

    function test_constructor_rejectsZeroOwner() public {
        vm.expectRevert(bytes("Ownable: new owner is the zero address"));
        new MockUSDC(address(0), "USD Coin", "2");
    }

    function test_transferOwnership_movesEveryRole() public {
        address newOwner = makeAddr("newOwner");
        vm.expectRevert(bytes("Ownable: caller is not the owner"));
        usdc.transferOwnership(newOwner);
        vm.prank(owner);
        vm.expectRevert(bytes("Ownable: new owner is the zero address"));
        usdc.transferOwnership(address(0));

        vm.prank(owner);
        vm.expectEmit(address(usdc));
        emit MockUSDC.OwnershipTransferred(owner, newOwner);
        usdc.transferOwnership(newOwner);
        assertEq(usdc.owner(), newOwner);

        vm.startPrank(owner);
        vm.expectRevert(bytes("Pausable: caller is not the pauser"));
        usdc.pause();
        vm.expectRevert(bytes("Blacklistable: caller is not the blacklister"));
        usdc.blacklist(alice);
        vm.expectRevert(bytes("FiatToken: caller is not the masterMinter"));
        usdc.configureMinter(owner, 1);
        vm.stopPrank();

        vm.startPrank(newOwner);
        usdc.pause();
        usdc.unpause();
        usdc.blacklist(alice);
        usdc.configureMinter(newOwner, 1);
        vm.stopPrank();
        assertTrue(usdc.isBlacklisted(alice));
        assertTrue(usdc.isMinter(newOwner));
    }

    // ---------------------------------------------------------------------------------------------
    // Minting and burning
    // ---------------------------------------------------------------------------------------------

    function test_mint_byMinterWithinAllowance() public {
        assertEq(usdc.minterAllowance(minter), MINTER_ALLOWANCE - ALICE_START - BOB_START);
        vm.expectEmit(address(usdc));
        emit MockUSDC.Mint(minter, carol, 7e6);
        vm.expectEmit(address(usdc));
        emit MockUSDC.Transfer(address(0), carol, 7e6);
        vm.prank(minter);
        usdc.mint(carol, 7e6);
        assertEq(usdc.balanceOf(carol), 7e6);
        assertEq(usdc.totalSupply(), ALICE_START + BOB_START + 7e6);
        assertEq(usdc.minterAllowance(minter), MINTER_ALLOWANCE - ALICE_START - BOB_START - 7e6);
    }

    function test_mint_onlyByMinter() public {
        vm.prank(alice);
        vm.expectRevert(bytes("FiatToken: caller is not a minter"));
        usdc.mint(alice, 1);
        // The owner is masterMinter, not a minter.
        vm.prank(owner);
        vm.expectRevert(bytes("FiatToken: caller is not a minter"));
        usdc.mint(owner, 1);
        assertEq(usdc.totalSupply(), ALICE_START + BOB_START);
    }

    function test_mint_exactAllowanceThenRefused() public {
        uint256 left = usdc.minterAllowance(minter);
        vm.startPrank(minter);
        vm.expectRevert(bytes("FiatToken: mint amount exceeds minterAllowance"));
        usdc.mint(carol, left + 1);
        usdc.mint(carol, left);
        assertEq(usdc.minterAllowance(minter), 0);
        vm.expectRevert(bytes("FiatToken: mint amount exceeds minterAllowance"));
        usdc.mint(carol, 1);
        vm.stopPrank();
        assertEq(usdc.balanceOf(carol), left);
        assertEq(usdc.totalSupply(), MINTER_ALLOWANCE);
    }

    function test_mint_rejectsZeroAmountAndZeroAddress() public {
        vm.startPrank(minter);
        vm.expectRevert(bytes("FiatToken: mint amount not greater than 0"));
        usdc.mint(carol, 0);
        vm.expectRevert(bytes("FiatToken: mint to the zero address"));
        usdc.mint(address(0), 1);
        vm.stopPrank();
    }

    function test_configureMinter_onlyOwner_andRemoveMinter() public {
        vm.prank(alice);
        vm.expectRevert(bytes("FiatToken: caller is not the masterMinter"));
        usdc.configureMinter(alice, 1);
        vm.prank(alice);
        vm.expectRevert(bytes("FiatToken: caller is not the masterMinter"));
        usdc.removeMinter(minter);

        // Reconfiguring replaces (does not add to) the allowance.
        vm.prank(owner);
        usdc.configureMinter(minter, 5);
        assertEq(usdc.minterAllowance(minter), 5);

        vm.prank(owner);
        vm.expectEmit(address(usdc));
        emit MockUSDC.MinterRemoved(minter);
        usdc.removeMinter(minter);
        assertFalse(usdc.isMinter(minter));
        assertEq(usdc.minterAllowance(minter), 0);
        vm.prank(minter);
        vm.expectRevert(bytes("FiatToken: caller is not a minter"));
        usdc.mint(carol, 1);
    }

    function test_mint_balanceCappedAt2pow255() public {
        vm.prank(owner);
        usdc.configureMinter(minter, type(uint256).max);
        vm.startPrank(minter);
        usdc.mint(carol, MAX_BALANCE);
        assertEq(usdc.balanceOf(carol), MAX_BALANCE);
        vm.expectRevert(bytes("FiatTokenV2_2: Balance exceeds (2^255 - 1)"));
        usdc.mint(carol, 1);
        vm.stopPrank();
        // The flag sits above a full balance without touching it.
        vm.prank(owner);
        usdc.blacklist(carol);
        assertEq(usdc.balanceOf(carol), MAX_BALANCE);
        assertTrue(usdc.isBlacklisted(carol));
        vm.prank(owner);
        usdc.unBlacklist(carol);
        assertEq(usdc.balanceOf(carol), MAX_BALANCE);
        assertFalse(usdc.isBlacklisted(carol));
    }

    function test_burn_ownBalance() public {
        vm.prank(minter);
        usdc.mint(minter, 10e6);
        vm.startPrank(minter);
        vm.expectRevert(bytes("FiatToken: burn amount exceeds balance"));
        usdc.burn(10e6 + 1);
        vm.expectRevert(bytes("FiatToken: burn amount not greater than 0"));
        usdc.burn(0);
        vm.expectEmit(address(usdc));
        emit MockUSDC.Burn(minter, 4e6);
        vm.expectEmit(address(usdc));
        emit MockUSDC.Transfer(minter, address(0), 4e6);
        usdc.burn(4e6);
        vm.stopPrank();
        assertEq(usdc.balanceOf(minter), 6e6);
        assertEq(usdc.totalSupply(), ALICE_START + BOB_START + 6e6);

        vm.prank(alice);
        vm.expectRevert(bytes("FiatToken: caller is not a minter"));
        usdc.burn(1);
    }

    // ---------------------------------------------------------------------------------------------
    // ERC-20
    // ---------------------------------------------------------------------------------------------

    function test_transfer() public {
        vm.expectEmit(address(usdc));
        emit MockUSDC.Transfer(alice, bob, 300e6);
        vm.prank(alice);
        assertTrue(usdc.transfer(bob, 300e6));
        assertEq(usdc.balanceOf(alice), ALICE_START - 300e6);
        assertEq(usdc.balanceOf(bob), BOB_START + 300e6);

        // Self-transfer and zero transfer are fine.
        vm.startPrank(alice);
        usdc.transfer(alice, 1e6);
        usdc.transfer(bob, 0);
        vm.stopPrank();
        assertEq(usdc.balanceOf(alice), ALICE_START - 300e6);
        assertEq(usdc.balanceOf(bob), BOB_START + 300e6);
    }

    function test_transfer_reverts() public {
        vm.startPrank(alice);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        usdc.transfer(bob, ALICE_START + 1);
        vm.expectRevert(bytes("ERC20: transfer to the zero address"));
        usdc.transfer(address(0), 1);
        // The token contract is blacklisted, as on mainnet.
        vm.expectRevert(BLACKLISTED);
        usdc.transfer(address(usdc), 1);
        vm.stopPrank();
        assertEq(usdc.balanceOf(alice), ALICE_START);
    }

    function test_transferFrom_alwaysDecrementsAllowance() public {
        vm.prank(alice);
        vm.expectEmit(address(usdc));
        emit MockUSDC.Approval(alice, carol, type(uint256).max);
        usdc.approve(carol, type(uint256).max);

        vm.prank(carol);
        assertTrue(usdc.transferFrom(alice, bob, 100e6));
        assertEq(usdc.balanceOf(alice), ALICE_START - 100e6);
        assertEq(usdc.balanceOf(bob), BOB_START + 100e6);
        assertEq(usdc.balanceOf(carol), 0);
        // No infinite-allowance special case.
        assertEq(usdc.allowance(alice, carol), type(uint256).max - 100e6);
    }

    function test_transferFrom_reverts() public {
        vm.prank(alice);
        usdc.approve(carol, 50e6);
        vm.startPrank(carol);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds allowance"));
        usdc.transferFrom(alice, bob, 50e6 + 1);
        vm.expectRevert(bytes("ERC20: transfer to the zero address"));
        usdc.transferFrom(alice, address(0), 1);
        usdc.transferFrom(alice, bob, 50e6);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds allowance"));
        usdc.transferFrom(alice, bob, 1);
        vm.stopPrank();

        vm.prank(alice);
        usdc.approve(carol, ALICE_START);
        vm.prank(carol);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        usdc.transferFrom(alice, bob, ALICE_START);
        assertEq(usdc.balanceOf(alice), ALICE_START - 50e6);
        assertEq(usdc.allowance(alice, carol), ALICE_START);
    }

    function test_approve_increase_decrease() public {
        vm.startPrank(alice);
        vm.expectRevert(bytes("ERC20: approve to the zero address"));
        usdc.approve(address(0), 1);
        usdc.approve(carol, 10);
        usdc.increaseAllowance(carol, 5);
        assertEq(usdc.allowance(alice, carol), 15);
        usdc.decreaseAllowance(carol, 15);
        assertEq(usdc.allowance(alice, carol), 0);
        vm.expectRevert(bytes("ERC20: decreased allowance below zero"));
        usdc.decreaseAllowance(carol, 1);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------------------------------------
    // Pause
    // ---------------------------------------------------------------------------------------------

    function test_pause_onlyOwner() public {
        vm.prank(alice);
        vm.expectRevert(bytes("Pausable: caller is not the pauser"));
        usdc.pause();
        vm.prank(owner);
        vm.expectEmit(address(usdc));
        emit MockUSDC.Pause();
        usdc.pause();
        assertTrue(usdc.paused());
        vm.prank(alice);
        vm.expectRevert(bytes("Pausable: caller is not the pauser"));
        usdc.unpause();
        vm.prank(owner);
        usdc.unpause();
        assertFalse(usdc.paused());
    }

    struct Sig {
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    function test_pause_blocksEveryEntryPoint() public {
        // Valid signatures, so only the pause can be what refuses them.
        Sig memory p;
        Sig memory t;
        Sig memory rc;
        Sig memory c;
        (p.v, p.r, p.s) = _signPermit(alicePk, alice, carol, 1, 0, block.timestamp);
        Auth memory a = _auth(1, bytes32(uint256(1)));
        (t.v, t.r, t.s) = _signAuth(alicePk, usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), a);
        (rc.v, rc.r, rc.s) = _signAuth(alicePk, usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), a);
        (c.v, c.r, c.s) = _signCancel(alicePk, alice, bytes32(uint256(2)));
        vm.prank(alice);
        usdc.approve(carol, 100);
        vm.prank(minter);
        usdc.mint(minter, 100);

        vm.prank(owner);
        usdc.pause();

        vm.startPrank(alice);
        vm.expectRevert(PAUSED);
        usdc.transfer(bob, 1);
        vm.expectRevert(PAUSED);
        usdc.approve(carol, 1);
        vm.expectRevert(PAUSED);
        usdc.increaseAllowance(carol, 1);
        vm.expectRevert(PAUSED);
        usdc.decreaseAllowance(carol, 1);
        vm.stopPrank();

        vm.prank(carol);
        vm.expectRevert(PAUSED);
        usdc.transferFrom(alice, bob, 1);

        vm.expectRevert(PAUSED);
        usdc.permit(alice, carol, 1, block.timestamp, p.v, p.r, p.s);

        vm.startPrank(minter);
        vm.expectRevert(PAUSED);
        usdc.mint(bob, 1);
        vm.expectRevert(PAUSED);
        usdc.burn(1);
        vm.stopPrank();

        vm.prank(owner);
        vm.expectRevert(PAUSED);
        usdc.configureMinter(carol, 1);

        vm.expectRevert(PAUSED);
        _twa(a, t.v, t.r, t.s);
        vm.prank(bob);
        vm.expectRevert(PAUSED);
        _rwa(a, rc.v, rc.r, rc.s);
        vm.expectRevert(PAUSED);
        usdc.cancelAuthorization(alice, bytes32(uint256(2)), c.v, c.r, c.s);

        // Nothing moved; admin actions other than configureMinter still work.
        assertEq(usdc.balanceOf(alice), ALICE_START);
        assertEq(usdc.balanceOf(bob), BOB_START);
        assertEq(usdc.allowance(alice, carol), 100);
        vm.startPrank(owner);
        usdc.blacklist(carol);
        usdc.unBlacklist(carol);
        usdc.removeMinter(carol);
        usdc.unpause();
        vm.stopPrank();

        // Unpaused, the same calls go through.
        vm.prank(alice);
        usdc.transfer(bob, 1);
        vm.prank(carol);
        usdc.transferFrom(alice, bob, 1);
        usdc.permit(alice, carol, 1, block.timestamp, p.v, p.r, p.s);
        _twa(a, t.v, t.r, t.s);
        usdc.cancelAuthorization(alice, bytes32(uint256(2)), c.v, c.r, c.s);
        assertEq(usdc.balanceOf(alice), ALICE_START - 3);
        assertEq(usdc.balanceOf(bob), BOB_START + 3);
        assertEq(usdc.allowance(alice, carol), 1);
        assertTrue(usdc.authorizationState(alice, bytes32(uint256(2))));
    }

    // ---------------------------------------------------------------------------------------------
    // Blacklist
    // ---------------------------------------------------------------------------------------------

    function test_blacklist_onlyOwner() public {
        vm.prank(alice);
        vm.expectRevert(bytes("Blacklistable: caller is not the blacklister"));
        usdc.blacklist(bob);
        vm.prank(owner);
        vm.expectEmit(address(usdc));
        emit MockUSDC.Blacklisted(bob);
        usdc.blacklist(bob);
        vm.prank(alice);
        vm.expectRevert(bytes("Blacklistable: caller is not the blacklister"));
        usdc.unBlacklist(bob);
        vm.prank(owner);
        vm.expectEmit(address(usdc));
        emit MockUSDC.UnBlacklisted(bob);
        usdc.unBlacklist(bob);
    }

    function test_blacklist_sender() public {
        vm.prank(owner);
        usdc.blacklist(alice);
        assertTrue(usdc.isBlacklisted(alice));
        assertEq(usdc.balanceOf(alice), ALICE_START); // balance kept

        vm.startPrank(alice);
        vm.expectRevert(BLACKLISTED);
        usdc.transfer(bob, 1);
        vm.expectRevert(BLACKLISTED);
        usdc.approve(carol, 1);
        vm.expectRevert(BLACKLISTED);
        usdc.increaseAllowance(carol, 1);
        vm.expectRevert(BLACKLISTED);
        usdc.decreaseAllowance(carol, 0);
        vm.stopPrank();

        vm.prank(owner);
        usdc.unBlacklist(alice);
        assertFalse(usdc.isBlacklisted(alice));
        assertEq(usdc.balanceOf(alice), ALICE_START);
        vm.prank(alice);
        usdc.transfer(bob, 1);
        assertEq(usdc.balanceOf(alice), ALICE_START - 1);
        assertEq(usdc.balanceOf(bob), BOB_START + 1);
    }

    function test_blacklist_receiver() public {
        vm.prank(owner);
        usdc.blacklist(bob);
        assertEq(usdc.balanceOf(bob), BOB_START);
        vm.prank(alice);
        vm.expectRevert(BLACKLISTED);
        usdc.transfer(bob, 1);
        vm.prank(alice);
        usdc.approve(carol, 10);
        vm.prank(carol);
        vm.expectRevert(BLACKLISTED);
        usdc.transferFrom(alice, bob, 1);
        vm.prank(minter);
        vm.expectRevert(BLACKLISTED);
        usdc.mint(bob, 1);
        // Receiving is back after unBlacklist, and the old balance is intact.
        vm.prank(owner);
        usdc.unBlacklist(bob);
        vm.prank(alice);
        usdc.transfer(bob, 1);
        assertEq(usdc.balanceOf(bob), BOB_START + 1);
    }

    function test_blacklist_transferFromChecksSpenderFromAndTo() public {
        vm.prank(alice);
        usdc.approve(carol, 100);

        address[3] memory parties = [carol, alice, bob];
        for (uint256 i; i < 3; ++i) {
            vm.prank(owner);
            usdc.blacklist(parties[i]);
            vm.prank(carol);
            vm.expectRevert(BLACKLISTED);
            usdc.transferFrom(alice, bob, 1);
            vm.prank(owner);
            usdc.unBlacklist(parties[i]);
        }
        vm.prank(carol);
        usdc.transferFrom(alice, bob, 1);
        assertEq(usdc.balanceOf(alice), ALICE_START - 1);
        assertEq(usdc.balanceOf(bob), BOB_START + 1);
        assertEq(usdc.allowance(alice, carol), 99);
    }

    function test_blacklist_spenderCannotBeApproved() public {
        vm.prank(owner);
        usdc.blacklist(carol);
        vm.prank(alice);
        vm.expectRevert(BLACKLISTED);
        usdc.approve(carol, 1);
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(alicePk, alice, carol, 1, 0, block.timestamp);
        vm.expectRevert(BLACKLISTED);
        usdc.permit(alice, carol, 1, block.timestamp, v, r, s);
        // Blacklisted permit owner too.
        (v, r, s) = _signPermit(bobPk, bob, alice, 1, 0, block.timestamp);
        vm.prank(owner);
        usdc.blacklist(bob);
        vm.expectRevert(BLACKLISTED);
        usdc.permit(bob, alice, 1, block.timestamp, v, r, s);
        assertEq(usdc.nonces(alice), 0);
        assertEq(usdc.nonces(bob), 0);
    }

    function test_blacklist_authorizationsAndMinter() public {
        Auth memory a = _auth(1, bytes32(uint256(7)));
        (uint8 v, bytes32 r, bytes32 s) = _signAuth(alicePk, usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), a);
        vm.prank(owner);
        usdc.blacklist(alice);
        vm.expectRevert(BLACKLISTED);
        _twa(a, v, r, s);
        vm.prank(owner);
        usdc.unBlacklist(alice);
        vm.prank(owner);
        usdc.blacklist(bob);
        vm.expectRevert(BLACKLISTED);
        _twa(a, v, r, s);
        (uint8 rv, bytes32 rr, bytes32 rs) = _signAuth(alicePk, usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), a);
        vm.prank(bob);
        vm.expectRevert(BLACKLISTED);
        _rwa(a, rv, rr, rs);
        assertFalse(usdc.authorizationState(alice, a.nonce));

        // A blacklisted minter can neither mint nor burn.
        vm.prank(minter);
        usdc.mint(minter, 5);
        vm.prank(owner);
        usdc.blacklist(minter);
        vm.startPrank(minter);
        vm.expectRevert(BLACKLISTED);
        usdc.mint(carol, 1);
        vm.expectRevert(BLACKLISTED);
        usdc.burn(1);
        vm.stopPrank();
        assertEq(usdc.balanceOf(minter), 5);
    }

    // ---------------------------------------------------------------------------------------------
    // EIP-2612 permit
    // ---------------------------------------------------------------------------------------------

    function test_permit_happyPath() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(alicePk, alice, carol, 123e6, 0, deadline);
        vm.expectEmit(address(usdc));
        emit MockUSDC.Approval(alice, carol, 123e6);
        vm.prank(bob); // anyone may submit
        usdc.permit(alice, carol, 123e6, deadline, v, r, s);
        assertEq(usdc.allowance(alice, carol), 123e6);
        assertEq(usdc.nonces(alice), 1);

        vm.prank(carol);
        usdc.transferFrom(alice, carol, 123e6);
        assertEq(usdc.balanceOf(carol), 123e6);
        assertEq(usdc.allowance(alice, carol), 0);

        // Next nonce; a deadline equal to now is still valid; max deadline never expires.
        (v, r, s) = _signPermit(alicePk, alice, carol, 1, 1, block.timestamp);
        usdc.permit(alice, carol, 1, block.timestamp, v, r, s);
        (v, r, s) = _signPermit(alicePk, alice, carol, 2, 2, type(uint256).max);
        vm.warp(type(uint64).max);
        usdc.permit(alice, carol, 2, type(uint256).max, v, r, s);
        assertEq(usdc.allowance(alice, carol), 2);
        assertEq(usdc.nonces(alice), 3);
    }

    function test_permit_expired() public {
        uint256 deadline = block.timestamp + 10;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(alicePk, alice, carol, 1, 0, deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(bytes("FiatTokenV2: permit is expired"));
        usdc.permit(alice, carol, 1, deadline, v, r, s);
        assertEq(usdc.nonces(alice), 0);
    }

    function test_permit_wrongSigner() public {
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(malloryPk, alice, carol, 1, 0, block.timestamp);
        vm.expectRevert(BAD_PERMIT_SIG);
        usdc.permit(alice, carol, 1, block.timestamp, v, r, s);
        // Signature by alice but for other terms.
        (v, r, s) = _signPermit(alicePk, alice, carol, 1, 0, block.timestamp);
        vm.expectRevert(BAD_PERMIT_SIG);
        usdc.permit(alice, carol, 2, block.timestamp, v, r, s);
        vm.expectRevert(BAD_PERMIT_SIG);
        usdc.permit(alice, bob, 1, block.timestamp, v, r, s);
        // High-s twin of a valid signature is refused (malleability).
        vm.expectRevert(BAD_PERMIT_SIG);
        usdc.permit(alice, carol, 1, block.timestamp, v == 27 ? 28 : 27, r, bytes32(SECP256K1_N - uint256(s)));
        assertEq(usdc.allowance(alice, carol), 0);
        assertEq(usdc.nonces(alice), 0);
    }

    function test_permit_replay() public {
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(alicePk, alice, carol, 5, 0, block.timestamp);
        usdc.permit(alice, carol, 5, block.timestamp, v, r, s);
        vm.prank(alice);
        usdc.approve(carol, 0);
        vm.expectRevert(BAD_PERMIT_SIG);
        usdc.permit(alice, carol, 5, block.timestamp, v, r, s);
        assertEq(usdc.allowance(alice, carol), 0);
        assertEq(usdc.nonces(alice), 1);
    }

    // ---------------------------------------------------------------------------------------------
    // EIP-3009
    // ---------------------------------------------------------------------------------------------

    function test_transferWithAuthorization_happyPath() public {
        Auth memory a = _auth(250e6, keccak256("n1"));
        (uint8 v, bytes32 r, bytes32 s) = _signAuth(alicePk, usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), a);
        assertFalse(usdc.authorizationState(alice, a.nonce));
        vm.expectEmit(address(usdc));
        emit MockUSDC.AuthorizationUsed(alice, a.nonce);
        vm.expectEmit(address(usdc));
        emit MockUSDC.Transfer(alice, bob, 250e6);
        vm.prank(carol); // any relayer
        _twa(a, v, r, s);
        assertTrue(usdc.authorizationState(alice, a.nonce));
        assertEq(usdc.balanceOf(alice), ALICE_START - 250e6);
        assertEq(usdc.balanceOf(bob), BOB_START + 250e6);
        assertEq(usdc.balanceOf(carol), 0);
    }

    function test_transferWithAuthorization_validityWindowIsExclusive() public {
        uint256 t = block.timestamp;
        Auth memory a = Auth(alice, bob, 1, t + 10, t + 20, keccak256("w"));
        (uint8 v, bytes32 r, bytes32 s) = _signAuth(alicePk, usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), a);

        vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        _twa(a, v, r, s);
        vm.warp(t + 10); // now == validAfter: still early
        vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        _twa(a, v, r, s);
        vm.warp(t + 20); // now == validBefore: expired
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        _twa(a, v, r, s);
        vm.warp(t + 30);
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        _twa(a, v, r, s);

        vm.warp(t + 19);
        _twa(a, v, r, s);
        assertEq(usdc.balanceOf(bob), BOB_START + 1);
    }

    function test_transferWithAuthorization_replay() public {
        Auth memory a = _auth(10e6, keccak256("once"));
        (uint8 v, bytes32 r, bytes32 s) = _signAuth(alicePk, usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), a);
        _twa(a, v, r, s);
        vm.expectRevert(AUTH_USED);
        _twa(a, v, r, s);
        // The same nonce can't be reused for a receive either.
        (v, r, s) = _signAuth(alicePk, usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), a);
        vm.prank(bob);
        vm.expectRevert(AUTH_USED);
        _rwa(a, v, r, s);
        assertEq(usdc.balanceOf(alice), ALICE_START - 10e6);
        assertEq(usdc.balanceOf(bob), BOB_START + 10e6);
    }

    function test_transferWithAuthorization_wrongSigner() public {
        Auth memory a = _auth(1e6, keccak256("x"));
        (uint8 v, bytes32 r, bytes32 s) = _signAuth(malloryPk, usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), a);
        vm.expectRevert(BAD_3009_SIG);
        _twa(a, v, r, s);

        // Alice's signature, tampered terms or the wrong type.
        (v, r, s) = _signAuth(alicePk, usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), a);
        a.value = 2e6;
        vm.expectRevert(BAD_3009_SIG);
        _twa(a, v, r, s);
        a.value = 1e6;
        a.to = carol;
        vm.expectRevert(BAD_3009_SIG);
        _twa(a, v, r, s);
        a.to = bob;
        (v, r, s) = _signAuth(alicePk, usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), a);
        vm.expectRevert(BAD_3009_SIG);
        _twa(a, v, r, s);
        assertFalse(usdc.authorizationState(alice, a.nonce));
        assertEq(usdc.balanceOf(alice), ALICE_START);
    }

    function test_transferWithAuthorization_insufficientBalance() public {
        Auth memory a = _auth(ALICE_START + 1, keccak256("big"));
        (uint8 v, bytes32 r, bytes32 s) = _signAuth(alicePk, usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), a);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        _twa(a, v, r, s);
        assertFalse(usdc.authorizationState(alice, a.nonce));
    }

    function test_receiveWithAuthorization_requiresPayeeCaller() public {
        Auth memory a = _auth(40e6, keccak256("rcv"));
        (uint8 v, bytes32 r, bytes32 s) = _signAuth(alicePk, usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), a);
        vm.prank(carol);
        vm.expectRevert(bytes("FiatTokenV2: caller must be the payee"));
        _rwa(a, v, r, s);
        vm.prank(alice);
        vm.expectRevert(bytes("FiatTokenV2: caller must be the payee"));
        _rwa(a, v, r, s);

        vm.expectEmit(address(usdc));
        emit MockUSDC.AuthorizationUsed(alice, a.nonce);
        vm.prank(bob);
        _rwa(a, v, r, s);
        assertEq(usdc.balanceOf(alice), ALICE_START - 40e6);
        assertEq(usdc.balanceOf(bob), BOB_START + 40e6);
        assertTrue(usdc.authorizationState(alice, a.nonce));

        // A transfer-typed signature is not a receive authorization.
        Auth memory b = _auth(1, keccak256("rcv2"));
        (v, r, s) = _signAuth(alicePk, usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), b);
        vm.prank(bob);
        vm.expectRevert(BAD_3009_SIG);
        _rwa(b, v, r, s);
    }

    function test_cancelAuthorization() public {
        Auth memory a = _auth(1e6, keccak256("cancel-me"));
        (uint8 v, bytes32 r, bytes32 s) = _signAuth(alicePk, usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), a);

        // Only the authorizer's signature cancels.
        (uint8 cv, bytes32 cr, bytes32 cs) = _signCancel(malloryPk, alice, a.nonce);
        vm.expectRevert(BAD_3009_SIG);
        usdc.cancelAuthorization(alice, a.nonce, cv, cr, cs);

        (cv, cr, cs) = _signCancel(alicePk, alice, a.nonce);
        vm.expectEmit(address(usdc));
        emit MockUSDC.AuthorizationCanceled(alice, a.nonce);
        vm.prank(carol);
        usdc.cancelAuthorization(alice, a.nonce, cv, cr, cs);
        assertTrue(usdc.authorizationState(alice, a.nonce));

        vm.expectRevert(AUTH_USED);
        _twa(a, v, r, s);
        vm.expectRevert(AUTH_USED);
        usdc.cancelAuthorization(alice, a.nonce, cv, cr, cs);
        assertEq(usdc.balanceOf(alice), ALICE_START);
        assertEq(usdc.balanceOf(bob), BOB_START);

        // A used authorization can't be canceled either.
        Auth memory b = _auth(1, keccak256("used"));
        (v, r, s) = _signAuth(alicePk, usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), b);
        _twa(b, v, r, s);
        (cv, cr, cs) = _signCancel(alicePk, alice, b.nonce);
        vm.expectRevert(AUTH_USED);
        usdc.cancelAuthorization(alice, b.nonce, cv, cr, cs);
    }

    // ---------------------------------------------------------------------------------------------
    // Fuzz: conservation
    // ---------------------------------------------------------------------------------------------

    /// @dev Random transfers and transferFroms among four holders (one of them blacklisted part of the
    ///      time) keep totalSupply == sum of balances and match a shadow ledger exactly.
    function testFuzz_transfers_conserveSupply(uint256[12] calldata ops, uint96 extraMint) public {
        address[4] memory holders = [alice, bob, carol, minter];
        uint256[4] memory ledger = [ALICE_START, BOB_START, uint256(0), uint256(0)];
        uint256 mintAmount = _bound(uint256(extraMint), 1, usdc.minterAllowance(minter));
        vm.prank(minter);
        usdc.mint(carol, mintAmount);
        ledger[2] = mintAmount;

        for (uint256 k; k < ops.length; ++k) {
            uint256 op = ops[k];
            uint256 i = op % 4;
            uint256 j = (op >> 8) % 4;
            uint256 amount = _bound(op >> 16, 0, ledger[i] + 1); // sometimes one too many
            bool viaAllowance = (op >> 128) & 1 == 1;
            bool shouldFail = amount > ledger[i];

            if (viaAllowance) {
                vm.prank(holders[i]);
                usdc.approve(address(this), amount);
                if (shouldFail) vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
                usdc.transferFrom(holders[i], holders[j], amount);
                assertEq(usdc.allowance(holders[i], address(this)), shouldFail ? amount : 0);
            } else {
                if (shouldFail) vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
                vm.prank(holders[i]);
                usdc.transfer(holders[j], amount);
            }
            if (!shouldFail) {
                ledger[i] -= amount;
                ledger[j] += amount;
            }

            // Toggle the blacklist flag on a holder: it must never change a balance.
            if ((op >> 129) & 1 == 1) {
                vm.startPrank(owner);
                usdc.blacklist(holders[j]);
                assertEq(usdc.balanceOf(holders[j]), ledger[j]);
                usdc.unBlacklist(holders[j]);
                vm.stopPrank();
            }

            uint256 sum;
            for (uint256 h; h < 4; ++h) {
                assertEq(usdc.balanceOf(holders[h]), ledger[h]);
                sum += usdc.balanceOf(holders[h]);
            }
            assertEq(usdc.totalSupply(), sum);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Gas
    // ---------------------------------------------------------------------------------------------

    /// @dev A plain transferFrom between two funded accounts, with a spender whose allowance stays
    ///      non-zero, as in a mainnet transaction: every storage slot cold (vm.cool), then once more warm.
    function test_gas_transferFrom() public {
        vm.prank(alice);
        usdc.approve(carol, 1_000e6);

        vm.cool(address(usdc));
        vm.prank(carol);
        uint256 before = gasleft();
        usdc.transferFrom(alice, bob, 10e6);
        uint256 cold = before - gasleft();

        vm.prank(carol);
        before = gasleft();
        usdc.transferFrom(alice, bob, 10e6);
        uint256 warm = before - gasleft();

        console2.log("transferFrom gas, cold slots (call only, excl. 21000 base + calldata):", cold);
        console2.log("transferFrom gas, warm slots:", warm);
        assertEq(usdc.balanceOf(bob), BOB_START + 20e6);
        assertEq(usdc.allowance(alice, carol), 980e6);
    }
}
