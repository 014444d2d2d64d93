// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IChannelManager} from "../src/interfaces/IChannelManager.sol";
import {ChannelTestBase} from "./utils/ChannelTestBase.sol";

/// @notice Security review of ChannelManager. The two `test_finding_*` tests fail on the current
/// contract and pass once the finding is fixed; every `test_pin_*` test pins a subtle behaviour
/// checked to be correct that no other suite covers.
contract ChannelManagerReviewTest is ChannelTestBase {
    uint256 internal constant T0 = 1_700_000_000;

    function setUp() public override {
        super.setUp();
        vm.warp(T0);
    }

    /// @dev Both sign the cooperative-close digest the contract publishes for the channel's
    /// current state (so these tests keep working if the digest gains state fields).
    function _coopSigs(uint256 id, uint256 payoutA, uint256 payoutB)
        internal
        view
        returns (bytes memory sigA, bytes memory sigB)
    {
        bytes32 digest = manager.cooperativeCloseDigest(id, payoutA, payoutB);
        sigA = _sign(alicePk, digest);
        sigB = _sign(bobPk, digest);
    }

    // ================================================================ findings (fail today)

    /// @dev Finding 1: an outsider front-runs a co-signed cooperative close with a 1-unit topUp
    /// for either participant; holdings no longer equal payoutA + payoutB, the close reverts with
    /// PayoutsMismatch, and the griefer can repeat it on every re-signed close (1e-6 USDC each).
    /// Fixed when only a participant may top up (the outsider's topUp then reverts) or when the
    /// cooperative close no longer depends on the exact holdings.
    function test_finding_outsiderTopUpCannotBlockSignedCooperativeClose() public {
        uint256 id = _openFunded(100e6, 50e6);
        (bytes memory sigA, bytes memory sigB) = _coopSigs(id, 100e6, 50e6);

        // carol sees the close in the mempool and tops bob up by one base unit first.
        vm.prank(carol);
        try manager.topUp(id, bob, 50e6 + 1) {} catch {}

        vm.prank(alice);
        manager.cooperativeClose(id, 100e6, 50e6, sigA, sigB);
        assertEq(uint8(_channel(id).state), uint8(IChannelManager.ChannelState.Settled));
        assertEq(usdc.balanceOf(alice), START_BALANCE, "alice gets her 100 back");
        assertGe(usdc.balanceOf(bob), START_BALANCE, "bob gets at least his 50 back");
    }

    /// @dev Finding 2: a CooperativeClose signature binds nothing but (channelId, payoutA,
    /// payoutB): no expiry, no deposits, no withdrawals. A co-signed close that was not submitted
    /// stays executable for the life of the channel whenever the holdings happen to equal the
    /// signed sum again (and it also overrides a later dispute). Here alice withholds {100, 50},
    /// the channel goes on (alice withdraws 30 co-signed, bob tops up 30), and alice submits the
    /// stale close: she gets 100 + 30 for a 100 deposit, bob loses 30.
    /// Fixed when the close is bound to the state it was signed for (withdrawn totals / deposits
    /// in the struct) or carries an expiry; the old message is then refused.
    function test_finding_staleCooperativeCloseRefusedAfterLaterWithdrawAndTopUp() public {
        uint256 id = _openFunded(100e6, 50e6);
        // Both sign the close over the digest the contract publishes for it now.
        (bytes memory sigA, bytes memory sigB) = _coopSigs(id, 100e6, 50e6);

        // Not submitted; the channel carries on.
        _withdraw(id, alice, 30e6);
        vm.prank(bob);
        manager.topUp(id, bob, 80e6);
        assertEq(manager.holdings(id), 150e6, "holdings equal the stale close's sum again");
        // What each is owed now: alice 100 - 30 = 70, bob 80.

        vm.prank(alice);
        (bool ok,) = address(manager)
            .call(
                abi.encodeWithSignature(
                    "cooperativeClose(uint256,uint256,uint256,bytes,bytes)", id, 100e6, 50e6, sigA, sigB
                )
            );
        assertFalse(ok, "a close signed before a later withdrawal must not execute");
        assertEq(usdc.balanceOf(alice), START_BALANCE - 100e6 + 30e6, "alice got only her withdrawal");
        assertEq(usdc.balanceOf(bob), START_BALANCE - 80e6);
    }

    // ================================================================ pinned behaviour (passes)

    /// @dev The workaround for finding 1, and why it works: once closed, topUp is refused, so a
    /// cooperative close signed during the challenge period cannot be griefed by a top-up.
    function test_pin_closedChannel_topUpRefused_cooperativeCloseGoesThrough() public {
        uint256 id = _openFunded(100e6, 50e6);
        vm.prank(bob);
        manager.close(id, 0, 0, "");

        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.ChannelNotOpen.selector, id, IChannelManager.ChannelState.Closed
            )
        );
        vm.prank(carol);
        manager.topUp(id, bob, 50e6 + 1);

        (bytes memory sigA, bytes memory sigB) = _coopSigs(id, 90e6, 60e6);
        manager.cooperativeClose(id, 90e6, 60e6, sigA, sigB);
        assertEq(usdc.balanceOf(alice), START_BALANCE - 10e6);
        assertEq(usdc.balanceOf(bob), START_BALANCE + 10e6);
        assertEq(usdc.balanceOf(address(manager)), 0);
    }

    /// @dev A withdrawal co-signed while open races a unilateral close. Whichever lands first,
    /// alice ends with exactly her net position (100 - 20 = 80): if the close wins, the withdrawal
    /// is refused and settle pays all 80; if the withdrawal wins, settle pays the remaining 50.
    function test_pin_withdrawRacingClose_closeFirst_settlePaysWholeNet() public {
        uint256 id = _openFunded(100e6, 50e6);
        uint64 expiry = uint64(block.timestamp + 1 hours);
        bytes memory wA = _signWithdraw(alicePk, id, alice, 30e6, expiry);
        bytes memory wB = _signWithdraw(bobPk, id, alice, 30e6, expiry);

        // bob closes first with alice's proof {1, 20}.
        vm.prank(bob);
        manager.close(id, 1, 20e6, _signProof(alicePk, id, 1, 20e6));
        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.ChannelNotOpen.selector, id, IChannelManager.ChannelState.Closed
            )
        );
        manager.withdraw(id, alice, 30e6, expiry, wA, wB);

        vm.warp(block.timestamp + PERIOD);
        manager.settle(id);
        assertEq(usdc.balanceOf(alice), START_BALANCE - 100e6 + 80e6);
        assertEq(usdc.balanceOf(bob), START_BALANCE - 50e6 + 70e6);
    }

    function test_pin_withdrawRacingClose_withdrawFirst_settleSubtractsIt() public {
        uint256 id = _openFunded(100e6, 50e6);
        _withdraw(id, alice, 30e6);
        vm.prank(bob);
        manager.close(id, 1, 20e6, _signProof(alicePk, id, 1, 20e6));
        vm.warp(block.timestamp + PERIOD);
        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelSettled(id, 50e6, 70e6, false);
        manager.settle(id);
        assertEq(usdc.balanceOf(alice), START_BALANCE - 100e6 + 80e6, "30 withdrawn + 50 settled");
        assertEq(usdc.balanceOf(bob), START_BALANCE - 50e6 + 70e6);
    }

    /// @dev With honest amounts (each side pays within what it has, a withdrawal within the
    /// withdrawer's net), withdrawal + settle give each side exactly its entitlement: a co-signed
    /// withdrawal never makes settle pay one side more (or less) than it is owed.
    function testFuzz_pin_withdrawPlusSettle_exactEntitlements(
        uint64 depositA,
        uint64 depositB,
        uint64 transferredA,
        uint64 transferredB,
        uint64 withdrawnA,
        bool aliceCloses
    ) public {
        uint256 dA = bound(depositA, 0, 500_000e6);
        uint256 dB = bound(depositB, 0, 500_000e6);
        uint256 tA = bound(transferredA, 0, dA);
        uint256 tB = bound(transferredB, 0, dB + tA);
        uint256 w = bound(withdrawnA, 0, dA + tB - tA);

        uint256 id = _openFunded(dA, dB);
        if (w != 0) _withdraw(id, alice, uint96(w));
        if (aliceCloses) {
            bytes memory sig = tB == 0 ? bytes("") : _signProof(bobPk, id, 1, uint128(tB));
            vm.prank(alice);
            manager.close(id, tB == 0 ? 0 : 1, uint128(tB), sig);
            if (tA != 0) manager.updateProof(id, 1, uint128(tA), _signProof(alicePk, id, 1, uint128(tA)));
        } else {
            bytes memory sig = tA == 0 ? bytes("") : _signProof(alicePk, id, 1, uint128(tA));
            vm.prank(bob);
            manager.close(id, tA == 0 ? 0 : 1, uint128(tA), sig);
            if (tB != 0) manager.updateProof(id, 1, uint128(tB), _signProof(bobPk, id, 1, uint128(tB)));
        }
        vm.warp(block.timestamp + PERIOD);
        manager.settle(id);

        assertEq(usdc.balanceOf(alice) + dA + tA, START_BALANCE + dA + tB, "alice: dA + tB - tA");
        assertEq(usdc.balanceOf(bob) + dB + tB, START_BALANCE + dB + tA, "bob: dB + tA - tB");
        assertEq(usdc.balanceOf(address(manager)), 0);
    }

    /// @dev Anyone may call settle with any gas limit, but cannot use the 63/64 rule to make a
    /// payout fail into `claimable`: a settle either reverts as a whole or pays both directly.
    function test_pin_settleUnderAnyGasLimit_neverDefersAPayout() public {
        uint256 id = _openFunded(100e6, 50e6);
        vm.prank(alice);
        manager.close(id, 1, 10e6, _signProof(bobPk, id, 1, 10e6));
        vm.warp(block.timestamp + PERIOD);

        uint256 succeeded;
        for (uint256 g = 20_000; g <= 200_000; g += 500) {
            uint256 snap = vm.snapshotState();
            (bool ok,) = address(manager).call{gas: g}(abi.encodeCall(manager.settle, (id)));
            if (ok) {
                succeeded++;
                assertEq(manager.claimable(address(usdc), alice), 0, "alice deferred");
                assertEq(manager.claimable(address(usdc), bob), 0, "bob deferred");
                assertEq(usdc.balanceOf(alice), START_BALANCE + 10e6);
                assertEq(usdc.balanceOf(bob), START_BALANCE - 10e6);
            } else {
                assertEq(uint8(_channel(id).state), uint8(IChannelManager.ChannelState.Closed));
            }
            vm.revertToState(snap);
        }
        assertGt(succeeded, 0, "some gas limit is enough");
    }

    /// @dev The amount-ordered proofs (README's deviation) make every signed proof binding: a
    /// proof the payer signed but later "superseded" with a higher nonce and a smaller amount
    /// (e.g. a payment lost in a crash and re-signed from the partner's copy) still wins. Nodes
    /// must persist the cumulative amount before signing, not only reserve nonce ranges.
    function test_pin_signedHigherAmountBeatsLaterLowerAmount_storedNonceIsMax() public {
        uint256 id = _openFunded(100e6, 50e6);
        bytes memory lost = _signProof(alicePk, id, 5, 50e6);
        bytes memory resigned = _signProof(alicePk, id, 1000, 45e6);
        vm.prank(alice);
        manager.close(id, 0, 0, "");
        manager.updateProof(id, 1000, 45e6, resigned);
        manager.updateProof(id, 5, 50e6, lost);
        assertEq(_channel(id).transferredA, 50e6);
        assertEq(_channel(id).nonceA, 1000);
        vm.warp(block.timestamp + PERIOD);
        manager.settle(id);
        assertEq(usdc.balanceOf(bob), START_BALANCE + 50e6);
    }
}
