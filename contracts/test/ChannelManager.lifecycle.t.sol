// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {console2} from "forge-std/Test.sol";

import {IChannelManager} from "../src/interfaces/IChannelManager.sol";
import {ChannelTestBase} from "./utils/ChannelTestBase.sol";

/// @notice Channel lifecycles end to end, with every outcome checked to the base unit: balances,
/// stored fields and events.
contract ChannelManagerLifecycleTest is ChannelTestBase {
    uint256 internal constant T0 = 1_700_000_000;

    bytes internal constant BAD_3009_SIG = bytes("FiatTokenV2: invalid signature");
    bytes internal constant AUTH_USED = bytes("FiatTokenV2: authorization is used or canceled");
    bytes internal constant BLACKLISTED = bytes("Blacklistable: account is blacklisted");

    function setUp() public override {
        super.setUp();
        vm.warp(T0);
    }

    // ------------------------------------------------------------ helpers

    /// @dev `closer` closes with the partner's proof {nonce, transferred} (signed by `partnerPk`).
    function _close(address closer, uint256 partnerPk, uint256 id, uint64 nonce, uint128 transferred)
        internal
    {
        bytes memory sig = nonce == 0 ? bytes("") : _signProof(partnerPk, id, nonce, transferred);
        vm.prank(closer);
        manager.close(id, nonce, transferred, sig);
    }

    /// @dev carol, an outsider, submits a proof signed by `signerPk`.
    function _update(uint256 signerPk, uint256 id, uint64 nonce, uint128 transferred) internal {
        bytes memory sig = _signProof(signerPk, id, nonce, transferred);
        vm.prank(carol);
        manager.updateProof(id, nonce, transferred, sig);
    }

    function _assertState(uint256 id, IChannelManager.ChannelState expected) internal view {
        assertEq(uint8(_channel(id).state), uint8(expected), "channel state");
    }

    /// @dev A fresh account with tokens and no allowance to anyone.
    function _freshFunder(string memory name) internal returns (address who, uint256 pk) {
        pk = uint256(keccak256(bytes(name)));
        who = vm.addr(pk);
        vm.label(who, name);
        usdc.mint(who, START_BALANCE);
        assertEq(usdc.allowance(who, address(manager)), 0);
    }

    // ------------------------------------------------------------ the whole life of one channel

    uint96 internal constant LC_OPEN_A = 100e6;
    uint96 internal constant LC_DEPOSIT_A = 150e6;
    uint96 internal constant LC_DEPOSIT_B = 80e6;
    uint96 internal constant LC_WITHDRAWN_B = 30e6;
    uint64 internal constant LC_NONCE_B = 2; // bob's latest proof: he paid alice 25 in total
    uint128 internal constant LC_TRANSFERRED_B = 25e6;
    uint64 internal constant LC_NONCE_A = 3; // alice's latest proof: she paid bob 70 in total
    uint128 internal constant LC_TRANSFERRED_A = 70e6;
    // payoutA = 150 - 0 + 25 - 70 = 105; payoutB = (150 + 80 - 30) - 105 = 95 = 80 - 30 + 70 - 25.
    uint256 internal constant LC_PAYOUT_A = 105e6;
    uint256 internal constant LC_PAYOUT_B = 95e6;

    function test_lifecycle_openTopUpWithdrawCloseUpdateSettle_exactUnits() public {
        uint256 id = manager.channelCount() + 1;

        // open: alice funds 100.
        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelOpened(id, alice, bob, address(usdc), LC_OPEN_A, PERIOD);
        vm.prank(alice);
        assertEq(manager.open(address(usdc), bob, LC_OPEN_A, PERIOD), id);
        assertEq(manager.channelCount(), id);

        // topUp, both sides: bob to 80, alice to 150.
        vm.expectEmit(address(manager));
        emit IChannelManager.Deposited(id, bob, LC_DEPOSIT_B, LC_DEPOSIT_B);
        vm.prank(bob);
        manager.topUp(id, bob, LC_DEPOSIT_B);
        vm.expectEmit(address(manager));
        emit IChannelManager.Deposited(id, alice, LC_DEPOSIT_A, LC_DEPOSIT_A - LC_OPEN_A);
        vm.prank(alice);
        manager.topUp(id, alice, LC_DEPOSIT_A);
        assertEq(manager.holdings(id), 230e6);
        assertEq(usdc.balanceOf(address(manager)), 230e6);

        // co-signed withdrawal of 30 for bob, submitted by carol: the channel stays open.
        {
            uint64 expiry = uint64(block.timestamp + 1 hours);
            bytes memory sigA = _signWithdraw(alicePk, id, bob, LC_WITHDRAWN_B, expiry);
            bytes memory sigB = _signWithdraw(bobPk, id, bob, LC_WITHDRAWN_B, expiry);
            vm.expectEmit(address(manager));
            emit IChannelManager.Withdrawn(id, bob, LC_WITHDRAWN_B, LC_WITHDRAWN_B);
            vm.prank(carol);
            manager.withdraw(id, bob, LC_WITHDRAWN_B, expiry, sigA, sigB);
        }
        _assertState(id, IChannelManager.ChannelState.Open);
        assertEq(manager.holdings(id), 200e6);
        assertEq(usdc.balanceOf(address(manager)), 200e6);
        assertEq(usdc.balanceOf(bob), START_BALANCE - LC_DEPOSIT_B + LC_WITHDRAWN_B);

        // alice closes with bob's latest proof.
        uint40 settleAfter = uint40(block.timestamp + PERIOD);
        {
            bytes memory proofB = _signProof(bobPk, id, LC_NONCE_B, LC_TRANSFERRED_B);
            vm.expectEmit(address(manager));
            emit IChannelManager.ChannelClosed(id, alice, settleAfter, LC_NONCE_B, LC_TRANSFERRED_B);
            vm.prank(alice);
            manager.close(id, LC_NONCE_B, LC_TRANSFERRED_B, proofB);
        }
        _assertState(id, IChannelManager.ChannelState.Closed);

        // bob answers with alice's latest proof, inside the window.
        vm.warp(T0 + PERIOD / 2);
        {
            bytes memory proofA = _signProof(alicePk, id, LC_NONCE_A, LC_TRANSFERRED_A);
            vm.expectEmit(address(manager));
            emit IChannelManager.BalanceProofUpdated(id, alice, LC_NONCE_A, LC_TRANSFERRED_A);
            vm.prank(bob);
            manager.updateProof(id, LC_NONCE_A, LC_TRANSFERRED_A, proofA);
        }

        // past the window, anyone settles.
        vm.warp(uint256(settleAfter) + 1);
        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelSettled(id, LC_PAYOUT_A, LC_PAYOUT_B, false);
        vm.prank(carol);
        manager.settle(id);

        assertEq(usdc.balanceOf(alice), START_BALANCE - LC_DEPOSIT_A + LC_PAYOUT_A, "alice");
        assertEq(usdc.balanceOf(alice), START_BALANCE - 45e6, "alice: -70 paid +25 received");
        assertEq(usdc.balanceOf(bob), START_BALANCE - LC_DEPOSIT_B + LC_WITHDRAWN_B + LC_PAYOUT_B, "bob");
        assertEq(usdc.balanceOf(bob), START_BALANCE + 45e6, "bob: +70 received -25 paid");
        assertEq(usdc.balanceOf(carol), START_BALANCE, "carol");
        assertEq(usdc.balanceOf(address(manager)), 0, "manager");
        assertEq(manager.holdings(id), 0);

        IChannelManager.ChannelInfo memory info = _channel(id);
        assertEq(uint8(info.state), uint8(IChannelManager.ChannelState.Settled));
        assertEq(info.token, address(usdc));
        assertEq(info.participantA, alice);
        assertEq(info.participantB, bob);
        assertEq(info.depositA, LC_DEPOSIT_A);
        assertEq(info.depositB, LC_DEPOSIT_B);
        assertEq(info.withdrawnA, 0);
        assertEq(info.withdrawnB, LC_WITHDRAWN_B);
        assertEq(info.challengePeriod, PERIOD);
        assertEq(info.settleAfter, settleAfter);
        assertEq(info.closer, alice);
        assertEq(info.nonceA, LC_NONCE_A);
        assertEq(info.transferredA, LC_TRANSFERRED_A);
        assertEq(info.nonceB, LC_NONCE_B);
        assertEq(info.transferredB, LC_TRANSFERRED_B);
    }

    // ------------------------------------------------------------ settle arithmetic

    struct SettleCase {
        uint96 depositA;
        uint96 depositB;
        uint96 withdrawnA;
        uint96 withdrawnB;
        uint128 transferredA;
        uint128 transferredB;
        uint256 payoutA;
        uint256 payoutB;
    }

    function test_settle_arithmetic_table() public {
        uint128 max128 = type(uint128).max;
        SettleCase[12] memory t = [
            // nobody paid: each gets its own deposit back.
            SettleCase(100e6, 50e6, 0, 0, 0, 0, 100e6, 50e6),
            // alice paid 30.
            SettleCase(100e6, 50e6, 0, 0, 30e6, 0, 70e6, 80e6),
            // both paid: 100 + 45 - 30.
            SettleCase(100e6, 50e6, 0, 0, 30e6, 45e6, 115e6, 35e6),
            // with withdrawals: holdings 120, netA = 100 - 20 + 0 - 30 = 50.
            SettleCase(100e6, 50e6, 20e6, 10e6, 30e6, 0, 50e6, 70e6),
            // bob "paid" more than the channel holds: netA = 600 > 150, clamped to holdings.
            SettleCase(100e6, 50e6, 0, 0, 0, 500e6, 150e6, 0),
            // alice "paid" more than she has: netA = -400, clamped to zero.
            SettleCase(100e6, 50e6, 0, 0, 500e6, 0, 0, 150e6),
            // exactly everything to alice / to bob.
            SettleCase(100e6, 50e6, 0, 0, 0, 50e6, 150e6, 0),
            SettleCase(100e6, 50e6, 0, 0, 100e6, 0, 0, 150e6),
            // large cumulative totals that net within range: 100 + 1020 - 1000.
            SettleCase(100e6, 50e6, 0, 0, 1000e6, 1020e6, 120e6, 30e6),
            // alice funded nothing, bob paid her 20.
            SettleCase(0, 50e6, 0, 0, 0, 20e6, 20e6, 30e6),
            // alice withdrew most: holdings 60, netA = 100 - 90 - 30 < 0, bob's side (80) clamped to 60.
            SettleCase(100e6, 50e6, 90e6, 0, 30e6, 0, 0, 60e6),
            // the largest transfer a proof can carry.
            SettleCase(100e6, 50e6, 0, 0, 0, max128, 150e6, 0)
        ];
        for (uint256 i; i < t.length; i++) {
            console2.log("settle case", i);
            _runSettleCase(t[i]);
        }
    }

    function testFuzz_settle_payoutsClampedAndSumToHoldings(
        uint96 depositA,
        uint96 depositB,
        uint96 withdrawnA,
        uint96 withdrawnB,
        uint128 transferredA,
        uint128 transferredB
    ) public {
        SettleCase memory c;
        c.depositA = uint96(bound(depositA, 0, START_BALANCE));
        c.depositB = uint96(bound(depositB, 0, START_BALANCE));
        c.withdrawnA = uint96(bound(withdrawnA, 0, uint256(c.depositA) + c.depositB));
        c.withdrawnB = uint96(bound(withdrawnB, 0, uint256(c.depositA) + c.depositB - c.withdrawnA));
        c.transferredA = transferredA;
        c.transferredB = transferredB;
        uint256 held = uint256(c.depositA) + c.depositB - c.withdrawnA - c.withdrawnB;
        int256 netA = int256(uint256(c.depositA)) - int256(uint256(c.withdrawnA))
            + int256(uint256(transferredB)) - int256(uint256(transferredA));
        c.payoutA = netA <= 0 ? 0 : uint256(netA) > held ? held : uint256(netA);
        c.payoutB = held - c.payoutA;
        _runSettleCase(c);
    }

    function _runSettleCase(SettleCase memory c) internal {
        vm.prank(alice);
        uint256 id = manager.open(address(usdc), bob, c.depositA, PERIOD);
        if (c.depositB != 0) {
            vm.prank(bob);
            manager.topUp(id, bob, c.depositB);
        }
        if (c.withdrawnA != 0) _withdraw(id, alice, c.withdrawnA);
        if (c.withdrawnB != 0) _withdraw(id, bob, c.withdrawnB);
        _close(alice, bobPk, id, c.transferredB == 0 ? 0 : 1, c.transferredB);
        if (c.transferredA != 0) _update(alicePk, id, 1, c.transferredA);
        vm.warp(block.timestamp + PERIOD);

        uint256 held = manager.holdings(id);
        assertEq(held, uint256(c.depositA) + c.depositB - c.withdrawnA - c.withdrawnB, "holdings");
        assertEq(c.payoutA + c.payoutB, held, "table: payouts sum to holdings");
        uint256 alice0 = usdc.balanceOf(alice);
        uint256 bob0 = usdc.balanceOf(bob);
        uint256 manager0 = usdc.balanceOf(address(manager));

        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelSettled(id, c.payoutA, c.payoutB, false);
        manager.settle(id);

        assertEq(usdc.balanceOf(alice) - alice0, c.payoutA, "payoutA");
        assertEq(usdc.balanceOf(bob) - bob0, c.payoutB, "payoutB");
        assertEq(manager0 - usdc.balanceOf(address(manager)), held, "manager pays out exactly the holdings");
    }

    // ------------------------------------------------------------ challenge window edges

    /// @dev alice 100 / bob 50; alice closes at T0 with bob's proof {1, 10}.
    function _closedAtT0() internal returns (uint256 id, uint40 settleAfter) {
        id = _openFunded(100e6, 50e6);
        _close(alice, bobPk, id, 1, 10e6);
        settleAfter = _channel(id).settleAfter;
        assertEq(settleAfter, T0 + PERIOD);
    }

    function test_window_updateAtLastSecond_succeeds() public {
        (uint256 id, uint40 settleAfter) = _closedAtT0();
        vm.warp(settleAfter - 1);
        vm.expectEmit(address(manager));
        emit IChannelManager.BalanceProofUpdated(id, alice, 1, 20e6);
        _update(alicePk, id, 1, 20e6);
        assertEq(_channel(id).nonceA, 1);
        assertEq(_channel(id).transferredA, 20e6);
    }

    function test_window_updateAtAndAfterSettleAfter_challengePeriodOver() public {
        (uint256 id, uint40 settleAfter) = _closedAtT0();
        bytes memory sig = _signProof(alicePk, id, 1, 20e6);
        uint256[3] memory times =
            [uint256(settleAfter), uint256(settleAfter) + 1, uint256(settleAfter) + 365 days];
        for (uint256 i; i < times.length; i++) {
            vm.warp(times[i]);
            vm.expectRevert(
                abi.encodeWithSelector(IChannelManager.ChallengePeriodOver.selector, id, settleAfter)
            );
            manager.updateProof(id, 1, 20e6, sig);
        }
    }

    function test_window_settleOneSecondEarly_challengePeriodActive() public {
        (uint256 id, uint40 settleAfter) = _closedAtT0();
        vm.expectRevert(
            abi.encodeWithSelector(IChannelManager.ChallengePeriodActive.selector, id, settleAfter)
        );
        manager.settle(id);
        vm.warp(settleAfter - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IChannelManager.ChallengePeriodActive.selector, id, settleAfter)
        );
        manager.settle(id);
    }

    function test_window_settleAtSettleAfter_succeeds() public {
        (uint256 id, uint40 settleAfter) = _closedAtT0();
        vm.warp(settleAfter);
        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelSettled(id, 110e6, 40e6, false);
        manager.settle(id);
        _assertState(id, IChannelManager.ChannelState.Settled);
    }

    function test_window_shortestPeriod() public {
        vm.prank(alice);
        uint256 id = manager.open(address(usdc), bob, 10e6, MIN_PERIOD);
        _close(bob, alicePk, id, 0, 0);
        assertEq(_channel(id).settleAfter, T0 + MIN_PERIOD);
        assertEq(_channel(id).closer, bob);
        vm.warp(T0 + MIN_PERIOD - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.ChallengePeriodActive.selector, id, uint40(T0 + MIN_PERIOD)
            )
        );
        manager.settle(id);
        vm.warp(T0 + MIN_PERIOD);
        manager.settle(id);
        assertEq(usdc.balanceOf(alice), START_BALANCE);
    }

    // ------------------------------------------------------------ the newer proof wins
    // Proofs are cumulative: the later of two honest proofs has the higher nonce AND transfers
    // more. The contract orders by amount (nonce breaks ties), so a signer can never roll back.

    function test_newerProof_lessOrSame_staleProof() public {
        (uint256 id,) = _closedAtT0();
        _update(alicePk, id, 5, 50e6);
        bytes memory less = _signProof(alicePk, id, 6, 40e6);
        bytes memory same = _signProof(alicePk, id, 5, 50e6);
        bytes memory sameLower = _signProof(alicePk, id, 4, 50e6);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.StaleProof.selector, 5, 50e6, 6, 40e6));
        manager.updateProof(id, 6, 40e6, less);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.StaleProof.selector, 5, 50e6, 5, 50e6));
        manager.updateProof(id, 5, 50e6, same);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.StaleProof.selector, 5, 50e6, 4, 50e6));
        manager.updateProof(id, 4, 50e6, sameLower);
        // bob's side was recorded by the close at {1, 10}.
        bytes memory bobSame = _signProof(bobPk, id, 1, 10e6);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.StaleProof.selector, 1, 10e6, 1, 10e6));
        manager.updateProof(id, 1, 10e6, bobSame);
        // a higher one still goes in.
        _update(alicePk, id, 6, 55e6);
        assertEq(_channel(id).nonceA, 6);
        assertEq(_channel(id).transferredA, 55e6);
        assertEq(_channel(id).nonceB, 1);
        assertEq(_channel(id).transferredB, 10e6);
    }

    function test_nonce_watchtowerSubmitsParticipantsProof() public {
        // alice paid bob 60 (her latest proof {3, 60}); she closes as if she never paid.
        uint256 id = _openFunded(100e6, 50e6);
        _close(alice, bobPk, id, 0, 0);
        // bob is offline; carol, his watchtower, holds alice's signed proof and submits it.
        vm.warp(T0 + PERIOD - 10);
        vm.expectEmit(address(manager));
        emit IChannelManager.BalanceProofUpdated(id, alice, 3, 60e6);
        _update(alicePk, id, 3, 60e6);

        vm.warp(T0 + PERIOD);
        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelSettled(id, 40e6, 110e6, false);
        manager.settle(id);
        assertEq(usdc.balanceOf(bob), START_BALANCE - 50e6 + 110e6);
        assertEq(usdc.balanceOf(alice), START_BALANCE - 100e6 + 40e6);
        assertEq(usdc.balanceOf(carol), START_BALANCE, "the watchtower moved no money of its own");
    }

    function test_nonce_closerStalePartnerProof_correctedByHigherNonce() public {
        // alice closes with an old proof of bob {1, 10}; bob's latest is {3, 40}.
        uint256 id = _openFunded(100e6, 50e6);
        _close(alice, bobPk, id, 1, 10e6);
        vm.expectEmit(address(manager));
        emit IChannelManager.BalanceProofUpdated(id, bob, 3, 40e6);
        _update(bobPk, id, 3, 40e6);
        // bob's intermediate proof can no longer replace it.
        bytes memory older = _signProof(bobPk, id, 2, 25e6);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.StaleProof.selector, 3, 40e6, 2, 25e6));
        manager.updateProof(id, 2, 25e6, older);

        IChannelManager.ChannelInfo memory info = _channel(id);
        assertEq(info.nonceB, 3);
        assertEq(info.transferredB, 40e6);
        assertEq(info.closer, alice);

        vm.warp(T0 + PERIOD);
        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelSettled(id, 140e6, 10e6, false);
        manager.settle(id);
    }

    // Both tests below FAIL on the current contract (see the report): a payer signs a fresh proof
    // of its own with a higher nonce and a lower total and erases payments it already made.

    /// @dev alice pays bob 60 ({3, 60}), closes, and then submits (through any relayer) a self-signed
    /// {type(uint64).max, 0}; bob's real proof is then stale forever. Bob must still get his 60.
    function test_payerCannotRollBackOwnPayments_afterItsOwnClose() public {
        uint256 id = _openFunded(100e6, 0);
        _close(alice, bobPk, id, 0, 0);

        bytes memory forged = _signProof(alicePk, id, type(uint64).max, 0);
        vm.prank(carol);
        (bool forgedAccepted,) =
            address(manager).call(abi.encodeCall(manager.updateProof, (id, type(uint64).max, 0, forged)));
        bytes memory real = _signProof(alicePk, id, 3, 60e6);
        vm.prank(bob);
        (bool realAccepted,) = address(manager).call(abi.encodeCall(manager.updateProof, (id, 3, 60e6, real)));
        console2.log("self-signed rollback accepted:", forgedAccepted, "real proof accepted:", realAccepted);

        vm.warp(T0 + PERIOD);
        manager.settle(id);
        assertEq(usdc.balanceOf(bob), START_BALANCE + 60e6, "bob is paid what alice signed over to him");
        assertEq(usdc.balanceOf(alice), START_BALANCE - 60e6, "alice keeps only what she did not pay");
    }

    /// @dev bob closes with alice's latest proof {3, 60}; alice overwrites it with a self-signed
    /// {type(uint64).max, 0}.
    function test_payerCannotRollBackOwnPayments_afterPartnersClose() public {
        uint256 id = _openFunded(100e6, 0);
        _close(bob, alicePk, id, 3, 60e6);

        bytes memory forged = _signProof(alicePk, id, type(uint64).max, 0);
        vm.prank(alice);
        (bool forgedAccepted,) =
            address(manager).call(abi.encodeCall(manager.updateProof, (id, type(uint64).max, 0, forged)));
        console2.log("self-signed rollback accepted:", forgedAccepted);

        vm.warp(T0 + PERIOD);
        manager.settle(id);
        assertEq(usdc.balanceOf(bob), START_BALANCE + 60e6, "bob is paid what alice signed over to him");
        assertEq(usdc.balanceOf(alice), START_BALANCE - 60e6, "alice keeps only what she did not pay");
    }

    // ------------------------------------------------------------ cooperative close in a dispute

    function test_cooperativeCloseDuringDispute_beatsStaleUnilateralClose() public {
        // alice closes with bob's proof {1, 10} and leaves her own payments (70) off-chain:
        // settled unilaterally she would get 100 + 10 = 110. Both co-sign the real final state:
        // alice 100 + 10 - 70 = 40, bob 150 - 40 = 110.
        uint256 id = _openFunded(100e6, 50e6);
        _close(alice, bobPk, id, 1, 10e6);
        uint40 settleAfter = _channel(id).settleAfter;

        vm.warp(settleAfter - 1);
        bytes memory sigA = _signCoopClose(alicePk, id, 40e6, 110e6);
        bytes memory sigB = _signCoopClose(bobPk, id, 40e6, 110e6);
        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelSettled(id, 40e6, 110e6, true);
        vm.prank(bob);
        manager.cooperativeClose(id, 40e6, 110e6, sigA, sigB);

        _assertState(id, IChannelManager.ChannelState.Settled);
        assertEq(manager.holdings(id), 0);
        assertEq(usdc.balanceOf(alice), START_BALANCE - 100e6 + 40e6);
        assertEq(usdc.balanceOf(bob), START_BALANCE - 50e6 + 110e6);
        assertEq(usdc.balanceOf(address(manager)), 0);

        // The unilateral close is over: nothing about the channel moves any more.
        vm.warp(settleAfter);
        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.ChannelNotClosed.selector, id, IChannelManager.ChannelState.Settled
            )
        );
        manager.settle(id);
        bytes memory proofA = _signProof(alicePk, id, 9, 1);
        vm.warp(settleAfter - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.ChannelNotClosed.selector, id, IChannelManager.ChannelState.Settled
            )
        );
        manager.updateProof(id, 9, 1, proofA);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.ChannelAlreadySettled.selector, id));
        manager.cooperativeClose(id, 40e6, 110e6, sigA, sigB);
    }

    function test_cooperativeClose_whileOpen_paysExactly() public {
        uint256 id = _openFunded(100e6, 50e6);
        _withdraw(id, alice, 10e6);
        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelSettled(id, 0, 140e6, true);
        _coopClose(id, 0, 140e6);
        assertEq(usdc.balanceOf(alice), START_BALANCE - 90e6);
        assertEq(usdc.balanceOf(bob), START_BALANCE + 90e6);
        assertEq(usdc.balanceOf(address(manager)), 0);
        IChannelManager.ChannelInfo memory info = _channel(id);
        assertEq(uint8(info.state), uint8(IChannelManager.ChannelState.Settled));
        assertEq(info.closer, address(0));
        assertEq(info.settleAfter, 0);
    }

    // ------------------------------------------------------------ channel ids

    function test_channelIds_newIdForEveryOpen() public {
        assertEq(manager.channelCount(), 0);
        uint256[4] memory ids;
        for (uint256 i; i < 3; i++) {
            vm.prank(alice);
            ids[i] = manager.open(address(usdc), bob, 10e6, PERIOD);
            assertEq(ids[i], i + 1);
            assertEq(manager.channelCount(), i + 1);
        }
        vm.prank(bob);
        ids[3] = manager.open(address(usdc), alice, 5e6, PERIOD);
        assertEq(ids[3], 4);
        assertEq(manager.channelCount(), 4);
        assertEq(_channel(4).participantA, bob);
        assertEq(_channel(4).participantB, alice);
        assertEq(manager.holdings(1) + manager.holdings(2) + manager.holdings(3) + manager.holdings(4), 35e6);

        // A proof of channel 1 is worthless on channel 2, between the same parties.
        bytes memory proofFor1 = _signProof(bobPk, 1, 1, 5e6);
        (bytes32 r, bytes32 s, uint8 v) = _split(proofFor1);
        address recovered = ecrecover(_proofDigest(2, 1, 5e6), v, r, s);
        assertTrue(recovered != bob);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, bob, recovered));
        vm.prank(alice);
        manager.close(2, 1, 5e6, proofFor1);

        // Settling one leaves the others untouched.
        _coopClose(1, 10e6, 0);
        _assertState(1, IChannelManager.ChannelState.Settled);
        _assertState(2, IChannelManager.ChannelState.Open);
        assertEq(manager.holdings(2), 10e6);
        assertEq(manager.channelCount(), 4);
    }

    // ------------------------------------------------------------ gasless open: EIP-3009

    uint96 internal constant GASLESS_DEPOSIT = 100e6;

    /// @dev alice's EIP-3009 authorization to open to `partner` with `period` and `salt`.
    struct Authorization {
        bytes32 salt;
        bytes32 nonce;
        uint256 validBefore;
        uint8 v;
        bytes32 r;
        bytes32 s;
        // the terms submitted with it
        address partner;
        uint32 period;
        uint256 deposit;
    }

    function _authorize(address partner, uint32 period, bytes32 salt)
        internal
        view
        returns (Authorization memory a)
    {
        a.salt = salt;
        a.nonce = manager.openAuthorizationNonce(partner, period, salt);
        assertEq(a.nonce, _openAuthorizationNonce(partner, period, salt), "nonce computed both ways");
        a.validBefore = block.timestamp + 1 hours;
        (a.v, a.r, a.s) =
            _signReceiveAuthorization(alicePk, address(manager), GASLESS_DEPOSIT, 0, a.validBefore, a.nonce);
    }

    /// @dev Submits `a` (the caller is set by a prank before this helper) with the given terms.
    function _openWith(Authorization memory a, address partner, uint32 period, uint256 deposit)
        internal
        returns (uint256)
    {
        a.partner = partner;
        a.period = period;
        a.deposit = deposit;
        return _submit(a);
    }

    function _submit(Authorization memory a) internal returns (uint256) {
        return _callManager(
            abi.encodeCall(
                manager.openWithAuthorization,
                (
                    address(usdc),
                    alice,
                    a.partner,
                    a.deposit,
                    a.period,
                    0,
                    a.validBefore,
                    a.salt,
                    a.v,
                    a.r,
                    a.s
                )
            )
        );
    }

    /// @dev A call to the manager that bubbles a revert and returns the uint256 it returned (zero
    /// when vm.expectRevert swallowed the expected revert). Used where a direct call with all its
    /// arguments would not fit the stack.
    function _callManager(bytes memory data) internal returns (uint256 result) {
        (bool success, bytes memory ret) = address(manager).call(data);
        if (!success) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        if (ret.length == 32) result = abi.decode(ret, (uint256));
    }

    function test_openWithAuthorization_submittedByPartner_funderSendsNothing() public {
        Authorization memory a = _authorize(bob, PERIOD, keccak256("first channel"));
        assertFalse(usdc.authorizationState(alice, a.nonce));
        uint256 id = manager.channelCount() + 1;
        uint64 aliceTxCount = vm.getNonce(alice);

        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelOpened(id, alice, bob, address(usdc), GASLESS_DEPOSIT, PERIOD);
        vm.prank(bob, bob); // bob is both msg.sender and tx.origin: he pays the gas
        assertEq(_openWith(a, bob, PERIOD, GASLESS_DEPOSIT), id);

        IChannelManager.ChannelInfo memory info = _channel(id);
        assertEq(uint8(info.state), uint8(IChannelManager.ChannelState.Open));
        assertEq(info.participantA, alice);
        assertEq(info.participantB, bob);
        assertEq(info.depositA, GASLESS_DEPOSIT);
        assertEq(info.challengePeriod, PERIOD);
        assertEq(usdc.balanceOf(alice), START_BALANCE - GASLESS_DEPOSIT);
        assertEq(usdc.balanceOf(bob), START_BALANCE);
        assertEq(usdc.balanceOf(address(manager)), GASLESS_DEPOSIT);
        assertTrue(usdc.authorizationState(alice, a.nonce));
        // alice sent no transaction, holds no ether to pay gas with, and her allowance was not
        // used (USDC always decrements an allowance it spends).
        assertEq(vm.getNonce(alice), aliceTxCount);
        assertEq(alice.balance, 0);
        assertEq(usdc.allowance(alice, address(manager)), type(uint256).max);
    }

    function test_openWithAuthorization_relayerCannotChangePartnerPeriodOrAmount() public {
        Authorization memory a = _authorize(bob, PERIOD, keccak256("fixed terms"));

        vm.expectRevert(BAD_3009_SIG);
        vm.prank(carol);
        _openWith(a, carol, PERIOD, GASLESS_DEPOSIT);
        vm.expectRevert(BAD_3009_SIG);
        vm.prank(carol);
        _openWith(a, bob, MIN_PERIOD, GASLESS_DEPOSIT);
        vm.expectRevert(BAD_3009_SIG);
        vm.prank(carol);
        _openWith(a, bob, PERIOD, GASLESS_DEPOSIT + 1);
        assertEq(manager.channelCount(), 0);
        assertEq(usdc.balanceOf(alice), START_BALANCE);
        assertFalse(usdc.authorizationState(alice, a.nonce));

        // The terms alice signed go through, whoever submits.
        vm.prank(carol);
        assertEq(_openWith(a, bob, PERIOD, GASLESS_DEPOSIT), 1);
        assertEq(_channel(1).participantB, bob);
        assertEq(usdc.balanceOf(alice), START_BALANCE - GASLESS_DEPOSIT);
        assertEq(usdc.balanceOf(carol), START_BALANCE);
    }

    function test_openWithAuthorization_replayRefused() public {
        Authorization memory a = _authorize(bob, PERIOD, keccak256("once"));
        vm.prank(bob);
        _openWith(a, bob, PERIOD, GASLESS_DEPOSIT);

        vm.expectRevert(AUTH_USED);
        vm.prank(bob);
        _openWith(a, bob, PERIOD, GASLESS_DEPOSIT);
        assertEq(manager.channelCount(), 1);
        assertEq(usdc.balanceOf(alice), START_BALANCE - GASLESS_DEPOSIT);
    }

    // ------------------------------------------------------------ gasless open: EIP-2612

    uint96 internal constant PERMIT_DEPOSIT = 75e6;

    /// @dev A funder's EIP-2612 permit of PERMIT_DEPOSIT to the manager.
    struct Permit {
        address funder;
        uint256 pk;
        uint256 deadline;
        uint8 v;
        bytes32 r;
        bytes32 s;
        // the terms submitted with it
        address partner;
        uint32 period;
    }

    /// @dev A fresh funded account ("dave") with no allowance, and its signed permit.
    function _freshPermit() internal returns (Permit memory p) {
        (p.funder, p.pk) = _freshFunder("dave");
        p.deadline = block.timestamp + 1 hours;
        (p.v, p.r, p.s) = _signPermit(p.pk, address(manager), PERMIT_DEPOSIT, p.deadline);
    }

    /// @dev Submits an openWithPermit (the caller is set by a prank before this helper).
    function _openWith(Permit memory p, address partner, uint32 period, bytes memory funderSig)
        internal
        returns (uint256)
    {
        p.partner = partner;
        p.period = period;
        return _submit(p, funderSig);
    }

    function _submit(Permit memory p, bytes memory funderSig) internal returns (uint256) {
        return _callManager(
            abi.encodeCall(
                manager.openWithPermit,
                (
                    address(usdc),
                    p.funder,
                    p.partner,
                    PERMIT_DEPOSIT,
                    p.period,
                    p.deadline,
                    p.v,
                    p.r,
                    p.s,
                    funderSig
                )
            )
        );
    }

    /// @dev The funder's OpenWithPermit signature over its current permit nonce (digest computed
    /// here and compared with the contract's).
    function _signOpenWithPermit(uint256 pk, address partner, uint32 period)
        internal
        view
        returns (bytes memory)
    {
        uint256 permitNonce = usdc.nonces(vm.addr(pk));
        bytes32 digest = _digest(
            keccak256(
                abi.encode(
                    OPEN_WITH_PERMIT_TYPEHASH, address(usdc), partner, PERMIT_DEPOSIT, period, permitNonce
                )
            )
        );
        assertEq(
            digest, manager.openWithPermitDigest(address(usdc), partner, PERMIT_DEPOSIT, period, permitNonce)
        );
        return _sign(pk, digest);
    }

    /// @dev Who `funderSig` recovers to for these terms at `permitNonce`.
    function _recoverOpenWithPermit(
        bytes memory funderSig,
        address partner,
        uint32 period,
        uint256 permitNonce
    ) internal view returns (address) {
        (bytes32 r, bytes32 s, uint8 v) = _split(funderSig);
        return ecrecover(
            manager.openWithPermitDigest(address(usdc), partner, PERMIT_DEPOSIT, period, permitNonce), v, r, s
        );
    }

    function test_openWithPermit_byFunderItself_noPriorApproval() public {
        Permit memory p = _freshPermit();

        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelOpened(1, p.funder, bob, address(usdc), PERMIT_DEPOSIT, PERIOD);
        vm.prank(p.funder);
        uint256 id = _openWith(p, bob, PERIOD, bytes(""));

        assertEq(id, 1);
        assertEq(_channel(id).participantA, p.funder);
        assertEq(_channel(id).depositA, PERMIT_DEPOSIT);
        assertEq(usdc.balanceOf(p.funder), START_BALANCE - PERMIT_DEPOSIT);
        assertEq(usdc.balanceOf(address(manager)), PERMIT_DEPOSIT);
        assertEq(usdc.nonces(p.funder), 1, "permit used");
        assertEq(usdc.allowance(p.funder, address(manager)), 0, "permit allowance spent exactly");
    }

    function test_openWithPermit_relayedByCarol_funderSignatureSingleUse() public {
        Permit memory p = _freshPermit();
        bytes memory funderSig = _signOpenWithPermit(p.pk, bob, PERIOD);

        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelOpened(1, p.funder, bob, address(usdc), PERMIT_DEPOSIT, PERIOD);
        vm.prank(carol);
        uint256 id = _openWith(p, bob, PERIOD, funderSig);
        assertEq(id, 1);
        assertEq(_channel(id).participantA, p.funder);
        assertEq(_channel(id).depositA, PERMIT_DEPOSIT);
        assertEq(usdc.balanceOf(p.funder), START_BALANCE - PERMIT_DEPOSIT);
        assertEq(usdc.balanceOf(carol), START_BALANCE, "the relayer pays no tokens");
        assertEq(usdc.nonces(p.funder), 1);

        // The same funder signature cannot open a second channel: the permit nonce moved on.
        address recovered = _recoverOpenWithPermit(funderSig, bob, PERIOD, 1);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, p.funder, recovered));
        vm.prank(carol);
        _openWith(p, bob, PERIOD, funderSig);
        assertEq(manager.channelCount(), 1);
        assertEq(usdc.balanceOf(p.funder), START_BALANCE - PERMIT_DEPOSIT);
    }

    function test_openWithPermit_relayed_termsBoundByFunderSignature() public {
        Permit memory p = _freshPermit();
        bytes memory funderSig = _signOpenWithPermit(p.pk, bob, PERIOD);

        // partner changed to carol
        address recovered = _recoverOpenWithPermit(funderSig, carol, PERIOD, 0);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, p.funder, recovered));
        vm.prank(carol);
        _openWith(p, carol, PERIOD, funderSig);
        // period changed
        recovered = _recoverOpenWithPermit(funderSig, bob, MAX_PERIOD, 0);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, p.funder, recovered));
        vm.prank(carol);
        _openWith(p, bob, MAX_PERIOD, funderSig);
        // no funder signature at all
        vm.expectRevert(IChannelManager.InvalidSignature.selector);
        vm.prank(carol);
        _openWith(p, bob, PERIOD, bytes(""));
        assertEq(manager.channelCount(), 0);
        assertEq(usdc.balanceOf(p.funder), START_BALANCE);
    }

    function test_openWithPermit_frontRunPermit_funderStillOpens() public {
        Permit memory p = _freshPermit();

        // carol sees the permit in the mempool and submits it to the token first.
        vm.prank(carol);
        usdc.permit(p.funder, address(manager), PERMIT_DEPOSIT, p.deadline, p.v, p.r, p.s);
        assertEq(usdc.nonces(p.funder), 1);

        vm.prank(p.funder);
        uint256 id = _openWith(p, bob, PERIOD, bytes(""));
        assertEq(_channel(id).depositA, PERMIT_DEPOSIT);
        assertEq(usdc.balanceOf(p.funder), START_BALANCE - PERMIT_DEPOSIT);
        assertEq(usdc.allowance(p.funder, address(manager)), 0);
    }

    /// @dev A relayed open needs its permit to go through (that is what spends the funder's
    /// signature). If someone front-runs the permit, the relayed open is refused and the funder
    /// signs again over the next permit nonce: griefing costs the funder a signature, never money.
    function test_openWithPermit_relayedAfterFrontRunPermit_refusedThenResigned() public {
        Permit memory p = _freshPermit();
        bytes memory funderSig = _signOpenWithPermit(p.pk, bob, PERIOD);

        vm.prank(bob);
        usdc.permit(p.funder, address(manager), PERMIT_DEPOSIT, p.deadline, p.v, p.r, p.s);

        address recovered = _recoverOpenWithPermit(funderSig, bob, PERIOD, 1);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, p.funder, recovered));
        vm.prank(carol);
        _openWith(p, bob, PERIOD, funderSig);
        assertEq(manager.channelCount(), 0);

        // The funder signs a fresh permit (nonce 1) and open request; the relay goes through.
        (p.v, p.r, p.s) = _signPermit(p.pk, address(manager), PERMIT_DEPOSIT, p.deadline);
        bytes memory again = _signOpenWithPermit(p.pk, bob, PERIOD);
        vm.prank(carol);
        uint256 id = _openWith(p, bob, PERIOD, again);
        assertEq(_channel(id).depositA, PERMIT_DEPOSIT);
        assertEq(usdc.balanceOf(p.funder), START_BALANCE - PERMIT_DEPOSIT);
        assertEq(usdc.nonces(p.funder), 2);
    }

    /// @dev A standing allowance must not let a relayer use the funder's signature without its
    /// permit: a junk permit makes the relayed open revert, and nothing moves.
    function test_openWithPermit_relayedWithJunkPermit_refusedDespiteStandingAllowance() public {
        // alice approved the manager in the fixture (standing allowance).
        Permit memory junk = Permit(alice, alicePk, block.timestamp + 1 hours, 0, 0, 0, bob, PERIOD);
        bytes memory funderSig = _signOpenWithPermit(alicePk, bob, PERIOD);

        for (uint256 i; i < 2; i++) {
            vm.prank(carol);
            (bool opened,) = address(manager)
                .call(
                    abi.encodeCall(
                        manager.openWithPermit,
                        (address(usdc), alice, bob, PERMIT_DEPOSIT, PERIOD, junk.deadline, 0, 0, 0, funderSig)
                    )
                );
            assertFalse(opened, "relayed open with a junk permit");
        }
        assertEq(manager.channelCount(), 0, "no channel opened");
        assertEq(usdc.balanceOf(alice), START_BALANCE, "alice's standing allowance untouched");
    }

    // ------------------------------------------------------------ deferred payouts and claim

    function test_claim_blacklistedPayeeDeferred_thenClaimedByAnyone() public {
        uint256 id = _openFunded(100e6, 50e6);
        _close(alice, bobPk, id, 0, 0);
        _update(alicePk, id, 2, 30e6); // alice paid bob 30
        usdc.blacklist(bob);

        vm.warp(T0 + PERIOD);
        vm.expectEmit(address(manager));
        emit IChannelManager.PayoutDeferred(id, address(usdc), bob, 80e6);
        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelSettled(id, 70e6, 80e6, false);
        vm.prank(alice);
        manager.settle(id);

        _assertState(id, IChannelManager.ChannelState.Settled);
        assertEq(usdc.balanceOf(alice), START_BALANCE - 100e6 + 70e6, "alice paid in full");
        assertEq(usdc.balanceOf(bob), START_BALANCE - 50e6, "bob paid nothing yet");
        assertEq(manager.claimable(address(usdc), bob), 80e6);
        assertEq(manager.claimable(address(usdc), alice), 0);
        assertEq(usdc.balanceOf(address(manager)), 80e6);

        // Still blacklisted: the claim reverts and is kept.
        vm.expectRevert(BLACKLISTED);
        vm.prank(carol);
        manager.claim(address(usdc), bob);
        assertEq(manager.claimable(address(usdc), bob), 80e6);

        usdc.unBlacklist(bob);
        vm.expectEmit(address(manager));
        emit IChannelManager.Claimed(address(usdc), bob, 80e6);
        vm.prank(carol);
        manager.claim(address(usdc), bob);
        assertEq(usdc.balanceOf(bob), START_BALANCE - 50e6 + 80e6);
        assertEq(usdc.balanceOf(carol), START_BALANCE);
        assertEq(manager.claimable(address(usdc), bob), 0);
        assertEq(usdc.balanceOf(address(manager)), 0);

        vm.expectRevert(abi.encodeWithSelector(IChannelManager.NothingToClaim.selector, address(usdc), bob));
        manager.claim(address(usdc), bob);
    }

    function test_claim_pausedTokenAtCooperativeClose_bothDeferred() public {
        uint256 id = _openFunded(100e6, 50e6);
        usdc.pause();
        vm.expectEmit(address(manager));
        emit IChannelManager.PayoutDeferred(id, address(usdc), alice, 60e6);
        vm.expectEmit(address(manager));
        emit IChannelManager.PayoutDeferred(id, address(usdc), bob, 90e6);
        vm.expectEmit(address(manager));
        emit IChannelManager.ChannelSettled(id, 60e6, 90e6, true);
        _coopClose(id, 60e6, 90e6);
        _assertState(id, IChannelManager.ChannelState.Settled);
        assertEq(manager.claimable(address(usdc), alice), 60e6);
        assertEq(manager.claimable(address(usdc), bob), 90e6);

        usdc.unpause();
        manager.claim(address(usdc), alice);
        manager.claim(address(usdc), bob);
        assertEq(usdc.balanceOf(alice), START_BALANCE - 40e6);
        assertEq(usdc.balanceOf(bob), START_BALANCE + 40e6);
        assertEq(usdc.balanceOf(address(manager)), 0);
    }
}
