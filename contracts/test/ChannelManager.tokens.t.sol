// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IChannelManager} from "../src/interfaces/IChannelManager.sol";
import {MockUSDC} from "../src/MockUSDC.sol";
import {FeeOnTransferToken} from "./mocks/FeeOnTransferToken.sol";
import {NoReturnToken} from "./mocks/NoReturnToken.sol";
import {ReentrantToken} from "./mocks/ReentrantToken.sol";
import {ReturnsFalseToken} from "./mocks/ReturnsFalseToken.sol";
import {ChannelTestBase} from "./utils/ChannelTestBase.sol";

/// @dev What the mocks (but NoReturnToken's approve) and MockUSDC have in common.
interface IMockToken {
    function balanceOf(address account) external view returns (uint256);
    function mint(address to, uint256 amount) external;
    function approve(address spender, uint256 amount) external returns (bool);
}

/// @notice RELIABILITY K2 (reentrancy through a malicious token), K3 (odd ERC-20s: no return
/// value, returns false, fee on transfer, USDC pause and blacklist), K6 (tokens sent straight to
/// the contract, several tokens side by side) and amounts at the edges of their storage types.
contract ChannelManagerTokensTest is ChannelTestBase {
    uint96 internal constant DEPOSIT_A = uint96(100 * USDC);
    uint96 internal constant DEPOSIT_B = uint96(50 * USDC);
    uint96 internal constant AMOUNT = uint96(7 * USDC);
    uint96 internal constant MAX96 = type(uint96).max;

    bytes internal constant PAUSED = bytes("Pausable: paused");
    bytes internal constant BLACKLISTED = bytes("Blacklistable: account is blacklisted");

    uint256 internal davePk = 0xDA7E;
    address internal dave;

    function setUp() public override {
        super.setUp();
        vm.warp(1_700_000_000);
        dave = vm.addr(davePk);
        vm.label(dave, "dave");
    }

    // ================================================================ K2: reentrancy

    ReentrantToken internal rt;
    /// @dev A channel in `rt`: alice 100, bob 50, open.
    uint256 internal rtId;

    /// @dev Deploy the reentrant token, fund everyone (dave without approval) and open `rtId`.
    function _setUpReentrant() internal {
        rt = new ReentrantToken();
        vm.label(address(rt), "reentrantToken");
        address[4] memory people = [alice, bob, carol, dave];
        for (uint256 i; i < people.length; i++) {
            rt.mint(people[i], START_BALANCE);
            if (people[i] == dave) continue;
            vm.prank(people[i]);
            rt.approve(address(manager), type(uint256).max);
        }
        vm.prank(alice);
        rtId = manager.open(address(rt), bob, DEPOSIT_A, PERIOD);
        vm.prank(bob);
        manager.topUp(rtId, bob, DEPOSIT_B);
    }

    /// @dev One call into every entry point, each one that would do harm (or at least succeed)
    /// if the guard let it through. The token makes it from inside its transfer.
    function _reentryCalls() internal view returns (bytes[] memory calls) {
        uint64 expiry = uint64(block.timestamp + 1 days);
        uint96 holdingsNow = uint96(manager.holdings(rtId));
        calls = new bytes[](10);
        calls[0] = abi.encodeCall(manager.open, (address(rt), bob, 0, PERIOD));
        calls[1] = abi.encodeCall(
            manager.openWithPermit, (address(rt), address(rt), bob, 0, PERIOD, expiry, 0, 0, 0, "")
        );
        calls[2] = abi.encodeCall(
            manager.openWithAuthorization,
            (address(rt), address(rt), bob, 0, PERIOD, 0, type(uint256).max, bytes32(0), 0, 0, 0)
        );
        calls[3] = abi.encodeCall(manager.topUp, (rtId, alice, DEPOSIT_A + 1));
        calls[4] = abi.encodeCall(
            manager.withdraw,
            (
                rtId,
                alice,
                AMOUNT,
                expiry,
                _signWithdraw(alicePk, rtId, alice, AMOUNT, expiry),
                _signWithdraw(bobPk, rtId, alice, AMOUNT, expiry)
            )
        );
        calls[5] = abi.encodeCall(
            manager.cooperativeClose,
            (
                rtId,
                holdingsNow,
                0,
                _signCoopClose(alicePk, rtId, holdingsNow, 0),
                _signCoopClose(bobPk, rtId, holdingsNow, 0)
            )
        );
        calls[6] = abi.encodeCall(manager.close, (rtId, 0, 0, ""));
        calls[7] = abi.encodeCall(manager.updateProof, (rtId, 9, 1, _signProof(alicePk, rtId, 9, 1)));
        calls[8] = abi.encodeCall(manager.settle, (rtId));
        calls[9] = abi.encodeCall(manager.claim, (address(rt), alice));
    }

    function _assertReentriesRefused(uint256 expectedAttempts) internal view {
        assertEq(rt.attempts(), expectedAttempts, "reentries attempted");
        assertEq(rt.refusals(), expectedAttempts, "reentries refused");
        assertEq(
            rt.lastRevertData(),
            abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)
        );
    }

    /// @dev Control: outside a manager call the same hook does reach the manager and the first
    /// three reentry calls (zero-deposit opens) succeed, so the refusals below are the guard's.
    function test_reentrancy_control_hookReachesManager() public {
        _setUpReentrant();
        bytes[] memory calls = _reentryCalls();
        for (uint256 i; i < 3; i++) {
            uint256 count = manager.channelCount();
            rt.arm(address(manager), calls[i], false);
            vm.prank(alice);
            rt.transfer(carol, 1);
            assertEq(rt.attempts(), 1);
            assertEq(rt.refusals(), 0);
            assertEq(manager.channelCount(), count + 1);
        }
    }

    function test_reentrancy_open() public {
        _setUpReentrant();
        bytes[] memory calls = _reentryCalls();
        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < calls.length; i++) {
            rt.arm(address(manager), calls[i], false);
            uint256 count = manager.channelCount();
            uint256 held = rt.balanceOf(address(manager));
            uint256 aliceBefore = rt.balanceOf(alice);

            vm.prank(alice);
            uint256 id = manager.open(address(rt), bob, AMOUNT, PERIOD);

            _assertReentriesRefused(1);
            assertEq(id, count + 1);
            assertEq(manager.channelCount(), count + 1);
            assertEq(_channel(id).depositA, AMOUNT);
            assertEq(rt.balanceOf(address(manager)), held + AMOUNT);
            assertEq(rt.balanceOf(alice), aliceBefore - AMOUNT);
            _assertBooks(address(rt));
            vm.revertToState(snapshot);
        }
    }

    function test_reentrancy_openWithPermit() public {
        _setUpReentrant();
        bytes[] memory calls = _reentryCalls();
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signTokenPermit(davePk, AMOUNT, deadline);
        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < calls.length; i++) {
            rt.arm(address(manager), calls[i], false);
            uint256 count = manager.channelCount();
            uint256 held = rt.balanceOf(address(manager));

            vm.prank(dave);
            uint256 id = manager.openWithPermit(address(rt), dave, bob, AMOUNT, PERIOD, deadline, v, r, s, "");

            _assertReentriesRefused(1);
            assertEq(id, count + 1);
            assertEq(manager.channelCount(), count + 1);
            assertEq(_channel(id).depositA, AMOUNT);
            assertEq(rt.balanceOf(address(manager)), held + AMOUNT);
            assertEq(rt.balanceOf(dave), START_BALANCE - AMOUNT);
            assertEq(rt.allowance(dave, address(manager)), 0);
            _assertBooks(address(rt));
            vm.revertToState(snapshot);
        }
    }

    function test_reentrancy_openWithAuthorization() public {
        _setUpReentrant();
        bytes[] memory calls = _reentryCalls();
        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < calls.length; i++) {
            rt.arm(address(manager), calls[i], false);
            uint256 count = manager.channelCount();
            uint256 held = rt.balanceOf(address(manager));

            // ReentrantToken's receiveWithAuthorization checks no signature (see the mock).
            vm.prank(carol);
            uint256 id = manager.openWithAuthorization(
                address(rt), dave, bob, AMOUNT, PERIOD, 0, type(uint256).max, bytes32("salt"), 27, 0, 0
            );

            _assertReentriesRefused(1);
            assertEq(id, count + 1);
            assertEq(manager.channelCount(), count + 1);
            assertEq(_channel(id).depositA, AMOUNT);
            assertEq(rt.balanceOf(address(manager)), held + AMOUNT);
            assertEq(rt.balanceOf(dave), START_BALANCE - AMOUNT);
            _assertBooks(address(rt));
            vm.revertToState(snapshot);
        }
    }

    function test_reentrancy_topUp() public {
        _setUpReentrant();
        bytes[] memory calls = _reentryCalls();
        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < calls.length; i++) {
            rt.arm(address(manager), calls[i], false);
            uint256 held = rt.balanceOf(address(manager));

            vm.prank(bob);
            manager.topUp(rtId, bob, DEPOSIT_B + AMOUNT);

            _assertReentriesRefused(1);
            assertEq(_channel(rtId).depositA, DEPOSIT_A);
            assertEq(_channel(rtId).depositB, DEPOSIT_B + AMOUNT);
            assertEq(rt.balanceOf(address(manager)), held + AMOUNT);
            assertEq(manager.holdings(rtId), DEPOSIT_A + DEPOSIT_B + AMOUNT);
            _assertBooks(address(rt));
            vm.revertToState(snapshot);
        }
    }

    function test_reentrancy_withdraw() public {
        _setUpReentrant();
        bytes[] memory calls = _reentryCalls();
        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < calls.length; i++) {
            rt.arm(address(manager), calls[i], false);
            uint256 held = rt.balanceOf(address(manager));
            uint256 bobBefore = rt.balanceOf(bob);

            _withdraw(rtId, bob, AMOUNT);

            _assertReentriesRefused(1);
            assertEq(_channel(rtId).withdrawnB, AMOUNT);
            assertEq(_channel(rtId).withdrawnA, 0);
            assertEq(uint8(_channel(rtId).state), uint8(IChannelManager.ChannelState.Open));
            assertEq(rt.balanceOf(bob), bobBefore + AMOUNT);
            assertEq(rt.balanceOf(address(manager)), held - AMOUNT);
            _assertBooks(address(rt));
            vm.revertToState(snapshot);
        }
    }

    function test_reentrancy_cooperativeClose() public {
        _setUpReentrant();
        bytes[] memory calls = _reentryCalls();
        uint96 payoutA = DEPOSIT_A - AMOUNT;
        uint96 payoutB = DEPOSIT_B + AMOUNT;
        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < calls.length; i++) {
            rt.arm(address(manager), calls[i], false);
            uint256 held = rt.balanceOf(address(manager));
            uint256 aliceBefore = rt.balanceOf(alice);
            uint256 bobBefore = rt.balanceOf(bob);

            _coopClose(rtId, payoutA, payoutB);

            _assertReentriesRefused(2); // one per payout
            assertEq(uint8(_channel(rtId).state), uint8(IChannelManager.ChannelState.Settled));
            assertEq(rt.balanceOf(alice), aliceBefore + payoutA);
            assertEq(rt.balanceOf(bob), bobBefore + payoutB);
            assertEq(rt.balanceOf(address(manager)), held - DEPOSIT_A - DEPOSIT_B);
            assertEq(manager.claimable(address(rt), alice), 0);
            assertEq(manager.claimable(address(rt), bob), 0);
            _assertBooks(address(rt));
            vm.revertToState(snapshot);
        }
    }

    function test_reentrancy_settle() public {
        _setUpReentrant();
        _closeWithBobProof(rtId, uint128(AMOUNT)); // bob paid alice 7
        vm.warp(block.timestamp + PERIOD);
        bytes[] memory calls = _reentryCalls();
        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < calls.length; i++) {
            rt.arm(address(manager), calls[i], false);
            uint256 held = rt.balanceOf(address(manager));
            uint256 aliceBefore = rt.balanceOf(alice);
            uint256 bobBefore = rt.balanceOf(bob);

            manager.settle(rtId);

            _assertReentriesRefused(2);
            assertEq(uint8(_channel(rtId).state), uint8(IChannelManager.ChannelState.Settled));
            assertEq(rt.balanceOf(alice), aliceBefore + DEPOSIT_A + AMOUNT);
            assertEq(rt.balanceOf(bob), bobBefore + DEPOSIT_B - AMOUNT);
            assertEq(rt.balanceOf(address(manager)), held - DEPOSIT_A - DEPOSIT_B);
            assertEq(manager.claimable(address(rt), alice), 0);
            assertEq(manager.claimable(address(rt), bob), 0);
            _assertBooks(address(rt));
            vm.revertToState(snapshot);
        }
    }

    function test_reentrancy_claim() public {
        _setUpReentrant();
        // A refusing token at settle leaves both payouts claimable.
        _closeWithBobProof(rtId, 0);
        vm.warp(block.timestamp + PERIOD);
        rt.arm(address(manager), abi.encodeCall(manager.settle, (rtId)), true);
        manager.settle(rtId);
        assertEq(manager.claimable(address(rt), alice), DEPOSIT_A);
        assertEq(manager.claimable(address(rt), bob), DEPOSIT_B);

        bytes[] memory calls = _reentryCalls();
        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < calls.length; i++) {
            rt.arm(address(manager), calls[i], false);
            uint256 held = rt.balanceOf(address(manager));
            uint256 aliceBefore = rt.balanceOf(alice);

            manager.claim(address(rt), alice);

            _assertReentriesRefused(1);
            assertEq(rt.balanceOf(alice), aliceBefore + DEPOSIT_A);
            assertEq(rt.balanceOf(address(manager)), held - DEPOSIT_A);
            assertEq(manager.claimable(address(rt), alice), 0);
            assertEq(manager.claimable(address(rt), bob), DEPOSIT_B);
            _assertBooks(address(rt));
            vm.revertToState(snapshot);
        }
    }

    /// @dev A token that turns the refused reentry into a failed transfer: calls that pull or
    /// push funds synchronously revert whole, with the guard's error, and change nothing.
    function test_reentrancy_bubbled_revertsWholeCall() public {
        _setUpReentrant();
        bytes[] memory calls = _reentryCalls();
        bytes memory guardError =
            abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signTokenPermit(davePk, AMOUNT, deadline);

        for (uint256 i; i < calls.length; i++) {
            rt.arm(address(manager), calls[i], true);
            uint256 held = rt.balanceOf(address(manager));
            uint256 count = manager.channelCount();

            vm.expectRevert(guardError);
            vm.prank(alice);
            manager.open(address(rt), bob, AMOUNT, PERIOD);

            vm.expectRevert(guardError);
            vm.prank(dave);
            manager.openWithPermit(address(rt), dave, bob, AMOUNT, PERIOD, deadline, v, r, s, "");

            vm.expectRevert(guardError);
            manager.openWithAuthorization(
                address(rt), dave, bob, AMOUNT, PERIOD, 0, type(uint256).max, bytes32(0), 27, 0, 0
            );

            vm.expectRevert(guardError);
            vm.prank(bob);
            manager.topUp(rtId, bob, DEPOSIT_B + AMOUNT);

            vm.expectRevert(guardError);
            _withdraw(rtId, bob, AMOUNT);

            assertEq(manager.channelCount(), count);
            assertEq(rt.balanceOf(address(manager)), held);
            assertEq(manager.holdings(rtId), DEPOSIT_A + DEPOSIT_B);
            assertEq(_channel(rtId).withdrawnB, 0);
            _assertBooks(address(rt));
        }
    }

    /// @dev The same refusing token at payout time: the payouts become claimable, the close
    /// completes, and each participant is paid exactly once when the token works again.
    function test_reentrancy_bubbled_payoutsBecomeClaimable() public {
        _setUpReentrant();
        bytes[] memory calls = _reentryCalls();
        uint96 payoutA = DEPOSIT_A - AMOUNT;
        uint96 payoutB = DEPOSIT_B + AMOUNT;
        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < calls.length * 2; i++) {
            bool cooperative = i < calls.length;
            uint256 aliceBefore = rt.balanceOf(alice);
            uint256 bobBefore = rt.balanceOf(bob);
            uint256 held = rt.balanceOf(address(manager));

            if (cooperative) {
                rt.arm(address(manager), calls[i], true);
                _coopClose(rtId, payoutA, payoutB);
            } else {
                _closeWithBobProof(rtId, 0);
                _signAndUpdateAliceProof(rtId, uint128(AMOUNT)); // alice paid bob 7
                vm.warp(block.timestamp + PERIOD);
                rt.arm(address(manager), calls[i - calls.length], true);
                manager.settle(rtId);
            }
            // (The token's records roll back with the refused transfer; the claims are the trace.)
            assertEq(uint8(_channel(rtId).state), uint8(IChannelManager.ChannelState.Settled));
            assertEq(rt.balanceOf(alice), aliceBefore, "nothing moved");
            assertEq(rt.balanceOf(bob), bobBefore, "nothing moved");
            assertEq(manager.claimable(address(rt), alice), payoutA);
            assertEq(manager.claimable(address(rt), bob), payoutB);
            _assertBooks(address(rt));

            rt.disarm();
            manager.claim(address(rt), alice);
            manager.claim(address(rt), bob);
            vm.expectRevert(
                abi.encodeWithSelector(IChannelManager.NothingToClaim.selector, address(rt), alice)
            );
            manager.claim(address(rt), alice);
            vm.expectRevert(abi.encodeWithSelector(IChannelManager.NothingToClaim.selector, address(rt), bob));
            manager.claim(address(rt), bob);

            assertEq(rt.balanceOf(alice), aliceBefore + payoutA);
            assertEq(rt.balanceOf(bob), bobBefore + payoutB);
            assertEq(rt.balanceOf(address(manager)), held - DEPOSIT_A - DEPOSIT_B);
            _assertBooks(address(rt));
            vm.revertToState(snapshot);
        }
    }

    /// @dev A claim the token refuses reverts whole and keeps the claim.
    function test_reentrancy_bubbled_claimKeepsClaim() public {
        _setUpReentrant();
        _closeWithBobProof(rtId, 0);
        vm.warp(block.timestamp + PERIOD);
        rt.arm(address(manager), abi.encodeCall(manager.settle, (rtId)), true);
        manager.settle(rtId);

        bytes[] memory calls = _reentryCalls();
        for (uint256 i; i < calls.length; i++) {
            rt.arm(address(manager), calls[i], true);
            vm.expectRevert(
                abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)
            );
            manager.claim(address(rt), alice);
            assertEq(manager.claimable(address(rt), alice), DEPOSIT_A);
        }
        rt.disarm();
        manager.claim(address(rt), alice);
        assertEq(manager.claimable(address(rt), alice), 0);
        _assertBooks(address(rt));
    }

    // ================================================================ K3: odd ERC-20s

    function testFuzz_feeOnTransfer_openRefused(uint256 amount) public {
        amount = bound(amount, 100, MAX96);
        FeeOnTransferToken fee = new FeeOnTransferToken();
        fee.mint(alice, amount);
        vm.prank(alice);
        fee.approve(address(manager), type(uint256).max);

        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.TransferAmountMismatch.selector, amount, amount - amount / 100
            )
        );
        vm.prank(alice);
        manager.open(address(fee), bob, amount, PERIOD);
        assertEq(manager.channelCount(), 0);
        assertEq(fee.balanceOf(address(manager)), 0);
    }

    function testFuzz_feeOnTransfer_topUpRefused(uint256 amount) public {
        amount = bound(amount, 100, MAX96);
        FeeOnTransferToken fee = new FeeOnTransferToken();
        fee.mint(bob, amount);
        vm.prank(bob);
        fee.approve(address(manager), type(uint256).max);
        vm.prank(alice);
        uint256 id = manager.open(address(fee), bob, 0, PERIOD); // no transfer, so accepted

        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.TransferAmountMismatch.selector, amount, amount - amount / 100
            )
        );
        vm.prank(bob);
        manager.topUp(id, bob, amount);
        assertEq(_channel(id).depositB, 0);
        assertEq(fee.balanceOf(address(manager)), 0);
    }

    /// @dev USDT-style token through every step that moves tokens: open, top-up, withdraw,
    /// unilateral close with updates, settle; and a cooperative close.
    function test_noReturnToken_fullLifecycle() public {
        NoReturnToken nrt = new NoReturnToken();
        for (uint256 i; i < 2; i++) {
            address p = i == 0 ? alice : bob;
            nrt.mint(p, START_BALANCE);
            vm.prank(p);
            nrt.approve(address(manager), type(uint256).max);
        }

        vm.prank(alice);
        uint256 id = manager.open(address(nrt), bob, DEPOSIT_A, PERIOD);
        vm.prank(bob);
        manager.topUp(id, bob, DEPOSIT_B);
        assertEq(nrt.balanceOf(address(manager)), DEPOSIT_A + DEPOSIT_B);

        _withdraw(id, alice, uint96(10 * USDC));
        assertEq(nrt.balanceOf(alice), START_BALANCE - DEPOSIT_A + 10 * USDC);

        // bob paid alice 5, alice paid bob 30.
        vm.prank(alice);
        manager.close(id, 1, uint128(5 * USDC), _signProof(bobPk, id, 1, uint128(5 * USDC)));
        vm.prank(bob);
        manager.updateProof(id, 2, uint128(30 * USDC), _signProof(alicePk, id, 2, uint128(30 * USDC)));
        vm.warp(block.timestamp + PERIOD);
        manager.settle(id);

        uint256 payoutA = 100 * USDC - 10 * USDC + 5 * USDC - 30 * USDC; // 65
        uint256 payoutB = 140 * USDC - payoutA; // 75
        assertEq(nrt.balanceOf(alice), START_BALANCE - DEPOSIT_A + 10 * USDC + payoutA);
        assertEq(nrt.balanceOf(bob), START_BALANCE - DEPOSIT_B + payoutB);
        assertEq(nrt.balanceOf(address(manager)), 0);

        // A second channel, closed cooperatively.
        vm.prank(alice);
        id = manager.open(address(nrt), bob, DEPOSIT_A, PERIOD);
        _coopClose(id, DEPOSIT_A - AMOUNT, AMOUNT);
        assertEq(nrt.balanceOf(alice), START_BALANCE - DEPOSIT_A + 10 * USDC + payoutA - AMOUNT);
        assertEq(nrt.balanceOf(bob), START_BALANCE - DEPOSIT_B + payoutB + AMOUNT);
        assertEq(nrt.balanceOf(address(manager)), 0);
    }

    function test_returnsFalseToken_openRefused() public {
        ReturnsFalseToken rft = new ReturnsFalseToken();
        rft.mint(alice, START_BALANCE);
        // No allowance: transferFrom returns false.
        vm.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(rft)));
        vm.prank(alice);
        manager.open(address(rft), bob, DEPOSIT_A, PERIOD);

        // Allowance but a frozen payer: also false.
        vm.prank(alice);
        rft.approve(address(manager), type(uint256).max);
        rft.setFrozen(alice, true);
        vm.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(rft)));
        vm.prank(alice);
        manager.open(address(rft), bob, DEPOSIT_A, PERIOD);
        assertEq(manager.channelCount(), 0);
        assertEq(rft.balanceOf(address(manager)), 0);
    }

    function test_returnsFalseToken_settleDefersRefusedPayout() public {
        ReturnsFalseToken rft = new ReturnsFalseToken();
        uint256 id = _openIn(address(rft));
        _closeWithBobProof(id, uint128(AMOUNT));
        vm.warp(block.timestamp + PERIOD);
        rft.setFrozen(bob, true);

        manager.settle(id);
        assertEq(rft.balanceOf(alice), START_BALANCE + AMOUNT, "alice paid in full");
        assertEq(rft.balanceOf(bob), START_BALANCE - DEPOSIT_B);
        assertEq(manager.claimable(address(rft), bob), DEPOSIT_B - AMOUNT);
        assertEq(rft.balanceOf(address(manager)), DEPOSIT_B - AMOUNT);

        // Still frozen: the claim fails and stays.
        vm.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(rft)));
        manager.claim(address(rft), bob);
        assertEq(manager.claimable(address(rft), bob), DEPOSIT_B - AMOUNT);

        rft.setFrozen(bob, false);
        manager.claim(address(rft), bob);
        assertEq(rft.balanceOf(bob), START_BALANCE - AMOUNT);
        assertEq(rft.balanceOf(address(manager)), 0);
        assertEq(manager.claimable(address(rft), bob), 0);
    }

    function test_returnsFalseToken_withdrawRefusedWhole() public {
        ReturnsFalseToken rft = new ReturnsFalseToken();
        uint256 id = _openIn(address(rft));
        rft.setFrozen(bob, true);
        vm.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(rft)));
        _withdraw(id, bob, AMOUNT);
        assertEq(_channel(id).withdrawnB, 0);
        assertEq(manager.holdings(id), DEPOSIT_A + DEPOSIT_B);
    }

    function test_usdcPausedAtSettle_bothPayoutsClaimable() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        _closeWithBobProof(id, uint128(AMOUNT));
        vm.warp(block.timestamp + PERIOD);
        usdc.pause();

        vm.expectEmit(address(manager));
        emit IChannelManager.PayoutDeferred(id, address(usdc), alice, DEPOSIT_A + AMOUNT);
        vm.expectEmit(address(manager));
        emit IChannelManager.PayoutDeferred(id, address(usdc), bob, DEPOSIT_B - AMOUNT);
        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelSettled(id, DEPOSIT_A + AMOUNT, DEPOSIT_B - AMOUNT, false);
        manager.settle(id);

        assertEq(uint8(_channel(id).state), uint8(IChannelManager.ChannelState.Settled));
        assertEq(manager.claimable(address(usdc), alice), DEPOSIT_A + AMOUNT);
        assertEq(manager.claimable(address(usdc), bob), DEPOSIT_B - AMOUNT);
        assertEq(usdc.balanceOf(address(manager)), DEPOSIT_A + DEPOSIT_B);

        vm.expectRevert(PAUSED);
        manager.claim(address(usdc), alice);
        assertEq(manager.claimable(address(usdc), alice), DEPOSIT_A + AMOUNT);

        usdc.unpause();
        manager.claim(address(usdc), alice);
        vm.prank(carol); // anyone may trigger; the tokens go to the owner
        manager.claim(address(usdc), bob);
        assertEq(usdc.balanceOf(alice), START_BALANCE + AMOUNT);
        assertEq(usdc.balanceOf(bob), START_BALANCE - AMOUNT);
        assertEq(usdc.balanceOf(carol), START_BALANCE);
        assertEq(usdc.balanceOf(address(manager)), 0);
        _assertBooks(address(usdc));
    }

    function test_usdcBlacklistedBob_cooperativeClose() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        usdc.blacklist(bob);
        _coopClose(id, DEPOSIT_A - AMOUNT, DEPOSIT_B + AMOUNT);

        assertEq(uint8(_channel(id).state), uint8(IChannelManager.ChannelState.Settled));
        assertEq(usdc.balanceOf(alice), START_BALANCE - AMOUNT, "alice paid in full");
        assertEq(manager.claimable(address(usdc), alice), 0);
        assertEq(manager.claimable(address(usdc), bob), DEPOSIT_B + AMOUNT);
        _assertBobClaimsAfterUnblacklist(DEPOSIT_B + AMOUNT, START_BALANCE + AMOUNT);
    }

    function test_usdcBlacklistedBob_settle() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        _closeWithBobProof(id, uint128(AMOUNT));
        vm.warp(block.timestamp + PERIOD);
        usdc.blacklist(bob);
        manager.settle(id);

        assertEq(usdc.balanceOf(alice), START_BALANCE + AMOUNT, "alice paid in full");
        assertEq(manager.claimable(address(usdc), alice), 0);
        assertEq(manager.claimable(address(usdc), bob), DEPOSIT_B - AMOUNT);
        _assertBobClaimsAfterUnblacklist(DEPOSIT_B - AMOUNT, START_BALANCE - AMOUNT);
    }

    function test_usdcBlacklistedAlice_topUpReverts() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        usdc.blacklist(alice);
        vm.expectRevert(BLACKLISTED);
        vm.prank(alice);
        manager.topUp(id, alice, DEPOSIT_A + AMOUNT);
        assertEq(_channel(id).depositA, DEPOSIT_A);

        vm.expectRevert(BLACKLISTED);
        vm.prank(alice);
        manager.open(address(usdc), bob, DEPOSIT_A, PERIOD);
    }

    // ================================================================ K6: stray tokens, several tokens

    function testFuzz_directTransfer_changesNoAccounting(uint256 stray, uint128 paid) public {
        stray = bound(stray, 1, START_BALANCE);
        paid = uint128(bound(paid, 0, DEPOSIT_B));
        uint256 settledId = _openFunded(DEPOSIT_A, DEPOSIT_B);
        uint256 coopId = _openFunded(DEPOSIT_A, DEPOSIT_B);
        IChannelManager.ChannelInfo memory before = _channel(settledId);

        vm.prank(carol);
        usdc.transfer(address(manager), stray);

        IChannelManager.ChannelInfo memory afterTransfer = _channel(settledId);
        assertEq(keccak256(abi.encode(afterTransfer)), keccak256(abi.encode(before)));
        assertEq(manager.holdings(settledId), DEPOSIT_A + DEPOSIT_B);
        assertEq(manager.holdings(coopId), DEPOSIT_A + DEPOSIT_B);

        // The stray tokens can be neither withdrawn nor paid out cooperatively...
        uint96 tooMuch = DEPOSIT_A + DEPOSIT_B + 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.InsufficientHoldings.selector, DEPOSIT_A + DEPOSIT_B, tooMuch
            )
        );
        _withdraw(coopId, alice, tooMuch);
        uint96 bigPayout = uint96(DEPOSIT_A + stray);
        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.PayoutsMismatch.selector,
                DEPOSIT_A + DEPOSIT_B,
                uint256(bigPayout) + DEPOSIT_B
            )
        );
        _coopClose(coopId, bigPayout, DEPOSIT_B);

        // ...nor change a settle's payouts.
        _closeWithBobProof(settledId, paid);
        vm.warp(block.timestamp + PERIOD);
        uint256 aliceBefore = usdc.balanceOf(alice);
        uint256 bobBefore = usdc.balanceOf(bob);
        manager.settle(settledId);
        assertEq(usdc.balanceOf(alice), aliceBefore + DEPOSIT_A + paid);
        assertEq(usdc.balanceOf(bob), bobBefore + DEPOSIT_B - paid);
        _coopClose(coopId, DEPOSIT_A, DEPOSIT_B);

        assertEq(usdc.balanceOf(address(manager)), stray, "only the stray tokens remain");
    }

    function test_twoTokens_settlingOneNeverMovesTheOther() public {
        MockUSDC usdc2 = new MockUSDC(address(this), "USD Coin", "2");
        usdc2.configureMinter(address(this), type(uint256).max);
        for (uint256 i; i < 2; i++) {
            address p = i == 0 ? alice : bob;
            usdc2.mint(p, START_BALANCE);
            vm.prank(p);
            usdc2.approve(address(manager), type(uint256).max);
        }
        uint256 a1 = _openFunded(DEPOSIT_A, DEPOSIT_B);
        uint256 b2 = _openIn(address(usdc2));
        uint256 b1 = _openFunded(DEPOSIT_A, DEPOSIT_B);
        uint256 c1 = _openFunded(DEPOSIT_A, DEPOSIT_B);
        uint256 b2x = _openIn(address(usdc2));
        uint256 token2Held = usdc2.balanceOf(address(manager));
        assertEq(token2Held, 2 * (DEPOSIT_A + DEPOSIT_B));

        // Token 1: a withdrawal, a cooperative close, a settle with a blacklisted payout and its claim.
        _withdraw(a1, bob, DEPOSIT_B + DEPOSIT_A);
        _coopClose(b1, DEPOSIT_A, DEPOSIT_B);
        _closeWithBobProof(c1, uint128(DEPOSIT_B));
        _closeWithBobProof(a1, 0);
        vm.warp(block.timestamp + PERIOD);
        usdc.blacklist(alice);
        manager.settle(c1);
        manager.settle(a1);
        assertEq(manager.claimable(address(usdc), alice), DEPOSIT_A + DEPOSIT_B);
        vm.expectRevert(
            abi.encodeWithSelector(IChannelManager.NothingToClaim.selector, address(usdc2), alice)
        );
        manager.claim(address(usdc2), alice);
        usdc.unBlacklist(alice);
        manager.claim(address(usdc), alice);

        assertEq(usdc.balanceOf(address(manager)), 0, "token 1 fully paid out");
        assertEq(usdc2.balanceOf(address(manager)), token2Held, "token 2 untouched");
        assertEq(manager.holdings(b2), DEPOSIT_A + DEPOSIT_B);
        assertEq(manager.holdings(b2x), DEPOSIT_A + DEPOSIT_B);

        // Token 2's channels still pay out exactly.
        _coopClose(b2, DEPOSIT_B, DEPOSIT_A);
        _coopClose(b2x, DEPOSIT_A + DEPOSIT_B, 0);
        assertEq(usdc2.balanceOf(address(manager)), 0);
        assertEq(usdc2.balanceOf(alice), START_BALANCE - DEPOSIT_A + DEPOSIT_B + DEPOSIT_B);
        assertEq(usdc2.balanceOf(bob), START_BALANCE - DEPOSIT_B + DEPOSIT_A - DEPOSIT_B);
    }

    // ================================================================ amounts at the type limits

    function testFuzz_depositNearUint96Max(uint96 depositA, uint96 depositB, bool cooperative) public {
        depositA = uint96(bound(depositA, MAX96 - 1e6, MAX96));
        depositB = uint96(bound(depositB, MAX96 - 1e6, MAX96));
        usdc.mint(alice, depositA);
        usdc.mint(bob, depositB);

        uint256 id = _openFunded(depositA, depositB);
        uint256 held = uint256(depositA) + depositB; // above type(uint96).max
        assertEq(manager.holdings(id), held);
        assertEq(usdc.balanceOf(address(manager)), held);

        if (cooperative) {
            _coopClose(id, depositB, depositA);
            assertEq(usdc.balanceOf(alice), START_BALANCE + depositB);
            assertEq(usdc.balanceOf(bob), START_BALANCE + depositA);
        } else {
            _closeWithBobProof(id, type(uint128).max); // bob "paid" far more than he holds: clamped
            vm.warp(block.timestamp + PERIOD);
            manager.settle(id);
            assertEq(usdc.balanceOf(alice), START_BALANCE + held);
            assertEq(usdc.balanceOf(bob), START_BALANCE);
        }
        assertEq(usdc.balanceOf(address(manager)), 0);
    }

    function testFuzz_amountTooLarge(uint256 amount) public {
        amount = bound(amount, uint256(MAX96) + 1, type(uint256).max);
        _assertAmountTooLarge(amount);
    }

    function test_amountTooLarge_edges() public {
        _assertAmountTooLarge(uint256(MAX96) + 1);
        _assertAmountTooLarge(1 << 128);
        _assertAmountTooLarge(1 << 255);
        _assertAmountTooLarge(type(uint256).max - 1);
        _assertAmountTooLarge(type(uint256).max);
    }

    /// @dev Proofs at the top of their types (cumulative amounts near 2^128, nonces near 2^64),
    /// with a withdrawal: payouts are clamped into [0, holdings] and add up to holdings exactly.
    function testFuzz_extremeProofs_settleClamped(
        uint128 transferredA,
        uint128 transferredB,
        uint64 nonceA,
        uint64 nonceB,
        uint96 withdrawn
    ) public {
        transferredA = uint128(bound(transferredA, type(uint128).max - 1e30, type(uint128).max));
        transferredB = uint128(bound(transferredB, type(uint128).max - 1e30, type(uint128).max));
        _settleWithProofs(transferredA, transferredB, nonceA, nonceB, withdrawn);
    }

    /// @dev The same over the whole range (the fuzzer also picks the edges 0 and max).
    function testFuzz_anyProofs_settleClamped(
        uint128 transferredA,
        uint128 transferredB,
        uint64 nonceA,
        uint64 nonceB,
        uint96 withdrawn
    ) public {
        _settleWithProofs(transferredA, transferredB, nonceA, nonceB, withdrawn);
    }

    function test_maxNonce_isFinal() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        uint64 max = type(uint64).max;
        vm.prank(alice);
        manager.close(id, max, type(uint128).max, _signProof(bobPk, id, max, type(uint128).max));
        vm.expectRevert(
            abi.encodeWithSelector(IChannelManager.StaleProof.selector, max, type(uint128).max, max, 0)
        );
        manager.updateProof(id, max, 0, _signProof(bobPk, id, max, 0));
        vm.warp(block.timestamp + PERIOD);
        manager.settle(id);
        assertEq(usdc.balanceOf(alice), START_BALANCE + DEPOSIT_B);
        assertEq(usdc.balanceOf(bob), START_BALANCE - DEPOSIT_B);
    }

    // ================================================================ helpers

    /// @dev Open a channel in `token` (alice 100, bob 50), minting and approving as needed.
    function _openIn(address token) internal returns (uint256 id) {
        if (IMockToken(token).balanceOf(alice) == 0) {
            IMockToken(token).mint(alice, START_BALANCE);
            IMockToken(token).mint(bob, START_BALANCE);
            vm.prank(alice);
            IMockToken(token).approve(address(manager), type(uint256).max);
            vm.prank(bob);
            IMockToken(token).approve(address(manager), type(uint256).max);
        }
        vm.prank(alice);
        id = manager.open(token, bob, DEPOSIT_A, PERIOD);
        vm.prank(bob);
        manager.topUp(id, bob, DEPOSIT_B);
    }

    /// @dev alice closes with bob's proof that he paid her `transferred` (nonce 1; none if zero).
    function _closeWithBobProof(uint256 id, uint128 transferred) internal {
        bytes memory sig = transferred == 0 ? bytes("") : _signProof(bobPk, id, 1, transferred);
        vm.prank(alice);
        manager.close(id, transferred == 0 ? 0 : 1, transferred, sig);
    }

    function _signAndUpdateAliceProof(uint256 id, uint128 transferred) internal {
        vm.prank(carol);
        manager.updateProof(id, 1, transferred, _signProof(alicePk, id, 1, transferred));
    }

    function _signTokenPermit(uint256 pk, uint256 value, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        address owner = vm.addr(pk);
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
                ),
                owner,
                address(manager),
                value,
                rt.nonces(owner),
                deadline
            )
        );
        return vm.sign(pk, keccak256(abi.encodePacked("\x19\x01", rt.DOMAIN_SEPARATOR(), structHash)));
    }

    /// @dev The manager's balance of `token` equals what its channels hold plus what is claimable
    /// (no stray tokens in these tests).
    function _assertBooks(address token) internal view {
        uint256 owed;
        uint256 count = manager.channelCount();
        for (uint256 id = 1; id <= count; id++) {
            if (_channel(id).token == token) owed += manager.holdings(id);
        }
        address[4] memory people = [alice, bob, carol, dave];
        for (uint256 i; i < people.length; i++) {
            owed += manager.claimable(token, people[i]);
        }
        assertEq(
            IMockToken(token).balanceOf(address(manager)), owed, "manager balance == holdings + claimable"
        );
    }

    function _assertBobClaimsAfterUnblacklist(uint256 owed, uint256 bobFinal) internal {
        vm.expectRevert(BLACKLISTED);
        manager.claim(address(usdc), bob);
        assertEq(manager.claimable(address(usdc), bob), owed);
        usdc.unBlacklist(bob);
        manager.claim(address(usdc), bob);
        assertEq(usdc.balanceOf(bob), bobFinal);
        assertEq(manager.claimable(address(usdc), bob), 0);
        assertEq(usdc.balanceOf(address(manager)), 0);
    }

    function _assertAmountTooLarge(uint256 amount) internal {
        bytes memory tooLarge = abi.encodeWithSelector(IChannelManager.AmountTooLarge.selector, amount, MAX96);
        uint256 id = manager.channelCount() == 0 ? _openFunded(DEPOSIT_A, DEPOSIT_B) : 1;

        vm.expectRevert(tooLarge);
        vm.prank(alice);
        manager.open(address(usdc), bob, amount, PERIOD);

        vm.expectRevert(tooLarge);
        vm.prank(alice);
        manager.openWithPermit(address(usdc), alice, bob, amount, PERIOD, block.timestamp, 0, 0, 0, "");

        vm.expectRevert(tooLarge);
        vm.prank(carol); // relayed: refused before any signature is looked at
        manager.openWithPermit(address(usdc), alice, bob, amount, PERIOD, block.timestamp, 0, 0, 0, "");

        vm.expectRevert(tooLarge);
        manager.openWithAuthorization(
            address(usdc), alice, bob, amount, PERIOD, 0, type(uint256).max, bytes32(0), 0, 0, 0
        );

        vm.expectRevert(tooLarge);
        vm.prank(bob);
        manager.topUp(id, bob, amount);

        vm.expectRevert(tooLarge);
        manager.withdraw(id, alice, amount, block.timestamp + 1, "", "");

        assertEq(manager.channelCount(), 1);
        assertEq(manager.holdings(id), DEPOSIT_A + DEPOSIT_B);
    }

    function _settleWithProofs(
        uint128 transferredA,
        uint128 transferredB,
        uint64 nonceA,
        uint64 nonceB,
        uint96 withdrawn
    ) internal {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        withdrawn = uint96(bound(withdrawn, 0, DEPOSIT_A + DEPOSIT_B));
        if (withdrawn != 0) _withdraw(id, alice, withdrawn);
        uint256 held = DEPOSIT_A + DEPOSIT_B - uint256(withdrawn);
        _closeAndUpdate(
            id,
            uint64(bound(nonceA, 1, type(uint64).max)),
            transferredA,
            uint64(bound(nonceB, 1, type(uint64).max)),
            transferredB
        );
        vm.warp(block.timestamp + PERIOD);

        uint256 aliceBefore = usdc.balanceOf(alice);
        uint256 bobBefore = usdc.balanceOf(bob);
        manager.settle(id);
        uint256 payoutA = usdc.balanceOf(alice) - aliceBefore;
        uint256 payoutB = usdc.balanceOf(bob) - bobBefore;

        assertEq(payoutA, _expectedPayoutA(transferredA, transferredB, withdrawn, held), "payout A");
        assertLe(payoutA, held);
        assertEq(payoutA + payoutB, held, "payouts add up to holdings");
        assertEq(usdc.balanceOf(address(manager)), 0);
        assertEq(manager.claimable(address(usdc), alice), 0);
        assertEq(manager.claimable(address(usdc), bob), 0);
    }

    /// @dev alice closes with bob's proof; a watchtower (carol) records alice's.
    function _closeAndUpdate(
        uint256 id,
        uint64 nonceA,
        uint128 transferredA,
        uint64 nonceB,
        uint128 transferredB
    ) internal {
        vm.prank(alice);
        manager.close(id, nonceB, transferredB, _signProof(bobPk, id, nonceB, transferredB));
        vm.prank(carol);
        manager.updateProof(id, nonceA, transferredA, _signProof(alicePk, id, nonceA, transferredA));
        assertEq(_channel(id).nonceA, nonceA);
        assertEq(_channel(id).nonceB, nonceB);
    }

    /// @dev A is owed its deposit plus what B paid, less what A withdrew and paid; clamped to
    /// what the channel holds.
    function _expectedPayoutA(uint256 transferredA, uint256 transferredB, uint256 withdrawnA, uint256 held)
        internal
        pure
        returns (uint256)
    {
        uint256 credit = DEPOSIT_A + transferredB;
        uint256 debit = withdrawnA + transferredA;
        if (credit <= debit) return 0;
        return credit - debit > held ? held : credit - debit;
    }
}
