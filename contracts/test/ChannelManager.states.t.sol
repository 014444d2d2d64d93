// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {console2} from "forge-std/Test.sol";

import {IChannelManager} from "../src/interfaces/IChannelManager.sol";
import {ChannelTestBase} from "./utils/ChannelTestBase.sol";

/// @notice Every entry point of ChannelManager in every channel state, as a table of
/// {state, entry point, expected outcome}; then the argument refusals of the three opens (also a
/// table) and each remaining custom error on its own.
contract ChannelManagerStatesTest is ChannelTestBase {
    // ------------------------------------------------------------ the state matrix

    /// @dev The channel states a case starts from. `None` is an id no open ever returned.
    enum State {
        None,
        Open,
        ClosedInWindow,
        ClosedWindowOver,
        SettledBySettle,
        SettledByCooperativeClose
    }

    enum Entry {
        TopUp,
        Withdraw,
        CooperativeClose,
        Close,
        UpdateProof,
        Settle,
        Claim
    }

    /// @dev `expected` empty = the call succeeds; otherwise the exact revert data.
    struct Case {
        State state;
        Entry entry;
        bytes expected;
    }

    /// @dev The expected outcomes used in the table, computed once for the case channel's id.
    struct Outcomes {
        bytes ok;
        bytes unknown;
        bytes notOpenClosed;
        bytes notOpenSettled;
        bytes notClosedOpen;
        bytes notClosedSettled;
        bytes periodOver;
        bytes periodActive;
        bytes alreadySettled;
        bytes nothingToClaim;
    }

    struct Balances {
        uint256 alice;
        uint256 bob;
        uint256 manager;
    }

    uint256 internal constant T0 = 1_700_000_000;
    uint256 internal constant UNKNOWN_ID = 4242;

    // The channel every case builds: alice 100, bob 50.
    uint96 internal constant DEPOSIT_A = 100e6;
    uint96 internal constant DEPOSIT_B = 50e6;
    // The Closed states: alice closes at T0 with bob's proof {1, 5}.
    uint64 internal constant BUILD_NONCE_B = 1;
    uint128 internal constant BUILD_TRANSFERRED_B = 5e6;
    // The Settled-by-cooperative-close state: co-signed {80, 70}.
    uint96 internal constant BUILD_COOP_A = 80e6;
    uint96 internal constant BUILD_COOP_B = 70e6;

    // Arguments of the calls under test (valid for the channel above).
    uint96 internal constant TOPUP_TOTAL_B = 60e6;
    uint96 internal constant WITHDRAW_TOTAL_A = 10e6;
    uint96 internal constant COOP_A = 90e6;
    uint96 internal constant COOP_B = 60e6;
    uint64 internal constant CLOSE_NONCE_B = 2;
    uint128 internal constant CLOSE_TRANSFERRED_B = 7e6;
    uint64 internal constant UPDATE_NONCE_A = 3;
    uint128 internal constant UPDATE_TRANSFERRED_A = 20e6;

    function setUp() public override {
        super.setUp();
        vm.warp(T0);
    }

    function _table(uint256 id) internal view returns (Case[] memory t) {
        uint40 settleAfter = uint40(T0 + PERIOD);
        Outcomes memory e = Outcomes({
            ok: "",
            unknown: abi.encodeWithSelector(IChannelManager.UnknownChannel.selector, UNKNOWN_ID),
            notOpenClosed: abi.encodeWithSelector(
                IChannelManager.ChannelNotOpen.selector, id, IChannelManager.ChannelState.Closed
            ),
            notOpenSettled: abi.encodeWithSelector(
                IChannelManager.ChannelNotOpen.selector, id, IChannelManager.ChannelState.Settled
            ),
            notClosedOpen: abi.encodeWithSelector(
                IChannelManager.ChannelNotClosed.selector, id, IChannelManager.ChannelState.Open
            ),
            notClosedSettled: abi.encodeWithSelector(
                IChannelManager.ChannelNotClosed.selector, id, IChannelManager.ChannelState.Settled
            ),
            periodOver: abi.encodeWithSelector(IChannelManager.ChallengePeriodOver.selector, id, settleAfter),
            periodActive: abi.encodeWithSelector(
                IChannelManager.ChallengePeriodActive.selector, id, settleAfter
            ),
            alreadySettled: abi.encodeWithSelector(IChannelManager.ChannelAlreadySettled.selector, id),
            nothingToClaim: abi.encodeWithSelector(
                IChannelManager.NothingToClaim.selector, address(usdc), bob
            )
        });

        t = new Case[](42);
        uint256 n;
        // topUp: only while open.
        t[n++] = Case(State.None, Entry.TopUp, e.unknown);
        t[n++] = Case(State.Open, Entry.TopUp, e.ok);
        t[n++] = Case(State.ClosedInWindow, Entry.TopUp, e.notOpenClosed);
        t[n++] = Case(State.ClosedWindowOver, Entry.TopUp, e.notOpenClosed);
        t[n++] = Case(State.SettledBySettle, Entry.TopUp, e.notOpenSettled);
        t[n++] = Case(State.SettledByCooperativeClose, Entry.TopUp, e.notOpenSettled);
        // withdraw: only while open.
        t[n++] = Case(State.None, Entry.Withdraw, e.unknown);
        t[n++] = Case(State.Open, Entry.Withdraw, e.ok);
        t[n++] = Case(State.ClosedInWindow, Entry.Withdraw, e.notOpenClosed);
        t[n++] = Case(State.ClosedWindowOver, Entry.Withdraw, e.notOpenClosed);
        t[n++] = Case(State.SettledBySettle, Entry.Withdraw, e.notOpenSettled);
        t[n++] = Case(State.SettledByCooperativeClose, Entry.Withdraw, e.notOpenSettled);
        // cooperativeClose: open or closed (either side of the window end), never settled.
        t[n++] = Case(State.None, Entry.CooperativeClose, e.unknown);
        t[n++] = Case(State.Open, Entry.CooperativeClose, e.ok);
        t[n++] = Case(State.ClosedInWindow, Entry.CooperativeClose, e.ok);
        t[n++] = Case(State.ClosedWindowOver, Entry.CooperativeClose, e.ok);
        t[n++] = Case(State.SettledBySettle, Entry.CooperativeClose, e.alreadySettled);
        t[n++] = Case(State.SettledByCooperativeClose, Entry.CooperativeClose, e.alreadySettled);
        // close: only while open.
        t[n++] = Case(State.None, Entry.Close, e.unknown);
        t[n++] = Case(State.Open, Entry.Close, e.ok);
        t[n++] = Case(State.ClosedInWindow, Entry.Close, e.notOpenClosed);
        t[n++] = Case(State.ClosedWindowOver, Entry.Close, e.notOpenClosed);
        t[n++] = Case(State.SettledBySettle, Entry.Close, e.notOpenSettled);
        t[n++] = Case(State.SettledByCooperativeClose, Entry.Close, e.notOpenSettled);
        // updateProof: only closed and inside the window.
        t[n++] = Case(State.None, Entry.UpdateProof, e.unknown);
        t[n++] = Case(State.Open, Entry.UpdateProof, e.notClosedOpen);
        t[n++] = Case(State.ClosedInWindow, Entry.UpdateProof, e.ok);
        t[n++] = Case(State.ClosedWindowOver, Entry.UpdateProof, e.periodOver);
        t[n++] = Case(State.SettledBySettle, Entry.UpdateProof, e.notClosedSettled);
        t[n++] = Case(State.SettledByCooperativeClose, Entry.UpdateProof, e.notClosedSettled);
        // settle: only closed and after the window.
        t[n++] = Case(State.None, Entry.Settle, e.unknown);
        t[n++] = Case(State.Open, Entry.Settle, e.notClosedOpen);
        t[n++] = Case(State.ClosedInWindow, Entry.Settle, e.periodActive);
        t[n++] = Case(State.ClosedWindowOver, Entry.Settle, e.ok);
        t[n++] = Case(State.SettledBySettle, Entry.Settle, e.notClosedSettled);
        t[n++] = Case(State.SettledByCooperativeClose, Entry.Settle, e.notClosedSettled);
        // claim: not about a channel; nothing was ever deferred, in any state.
        t[n++] = Case(State.None, Entry.Claim, e.nothingToClaim);
        t[n++] = Case(State.Open, Entry.Claim, e.nothingToClaim);
        t[n++] = Case(State.ClosedInWindow, Entry.Claim, e.nothingToClaim);
        t[n++] = Case(State.ClosedWindowOver, Entry.Claim, e.nothingToClaim);
        t[n++] = Case(State.SettledBySettle, Entry.Claim, e.nothingToClaim);
        t[n++] = Case(State.SettledByCooperativeClose, Entry.Claim, e.nothingToClaim);
        assertEq(n, t.length, "table size");
    }

    function test_stateMatrix_everyEntryPointInEveryState() public {
        uint256 id = manager.channelCount() + 1;
        Case[] memory table = _table(id);
        _assertFullMatrix(table);

        for (uint256 i; i < table.length; i++) {
            uint256 snapshot = vm.snapshotState();
            console2.log("case", i, uint256(table[i].state), uint256(table[i].entry));
            uint256 channelId = _build(table[i].state);
            if (table[i].state != State.None) assertEq(channelId, id, "case channel id");
            _run(table[i], channelId);
            vm.revertToState(snapshot);
        }
    }

    /// @dev Each (state, entry point) pair appears exactly once.
    function _assertFullMatrix(Case[] memory table) internal pure {
        uint256 seen;
        for (uint256 i; i < table.length; i++) {
            uint256 bit = 1 << (uint256(table[i].state) * 7 + uint256(table[i].entry));
            assertEq(seen & bit, 0, "duplicate case");
            seen |= bit;
        }
        assertEq(seen, (1 << 42) - 1, "every state x entry point");
    }

    /// @dev A fresh channel (same id every case thanks to the snapshot) in state `s`.
    function _build(State s) internal returns (uint256 id) {
        vm.warp(T0);
        if (s == State.None) return UNKNOWN_ID;
        id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        if (s == State.SettledByCooperativeClose) {
            _coopClose(id, BUILD_COOP_A, BUILD_COOP_B);
        } else if (s != State.Open) {
            vm.prank(alice);
            manager.close(
                id,
                BUILD_NONCE_B,
                BUILD_TRANSFERRED_B,
                _signProof(bobPk, id, BUILD_NONCE_B, BUILD_TRANSFERRED_B)
            );
            if (s != State.ClosedInWindow) vm.warp(T0 + PERIOD);
            if (s == State.SettledBySettle) manager.settle(id);
        }
        assertEq(uint8(_channel(id).state), uint8(_onChainState(s)), "built state");
    }

    function _onChainState(State s) internal pure returns (IChannelManager.ChannelState) {
        if (s == State.None) return IChannelManager.ChannelState.None;
        if (s == State.Open) return IChannelManager.ChannelState.Open;
        if (s == State.ClosedInWindow || s == State.ClosedWindowOver) {
            return IChannelManager.ChannelState.Closed;
        }
        return IChannelManager.ChannelState.Settled;
    }

    /// @dev The call of `entry` on channel `id` with otherwise valid arguments and signatures.
    function _call(Entry entry, uint256 id) internal view returns (address sender, bytes memory data) {
        if (entry == Entry.TopUp) {
            return (bob, abi.encodeCall(manager.topUp, (id, bob, TOPUP_TOTAL_B)));
        }
        if (entry == Entry.Withdraw) {
            uint64 expiry = uint64(block.timestamp + 1 hours);
            return (
                carol,
                abi.encodeCall(
                    manager.withdraw,
                    (
                        id,
                        alice,
                        WITHDRAW_TOTAL_A,
                        expiry,
                        _signWithdraw(alicePk, id, alice, WITHDRAW_TOTAL_A, expiry),
                        _signWithdraw(bobPk, id, alice, WITHDRAW_TOTAL_A, expiry)
                    )
                )
            );
        }
        if (entry == Entry.CooperativeClose) {
            return (
                carol,
                abi.encodeCall(
                    manager.cooperativeClose,
                    (
                        id,
                        COOP_A,
                        COOP_B,
                        _signCoopClose(alicePk, id, COOP_A, COOP_B),
                        _signCoopClose(bobPk, id, COOP_A, COOP_B)
                    )
                )
            );
        }
        if (entry == Entry.Close) {
            return (
                alice,
                abi.encodeCall(
                    manager.close,
                    (
                        id,
                        CLOSE_NONCE_B,
                        CLOSE_TRANSFERRED_B,
                        _signProof(bobPk, id, CLOSE_NONCE_B, CLOSE_TRANSFERRED_B)
                    )
                )
            );
        }
        if (entry == Entry.UpdateProof) {
            return (
                carol,
                abi.encodeCall(
                    manager.updateProof,
                    (
                        id,
                        UPDATE_NONCE_A,
                        UPDATE_TRANSFERRED_A,
                        _signProof(alicePk, id, UPDATE_NONCE_A, UPDATE_TRANSFERRED_A)
                    )
                )
            );
        }
        if (entry == Entry.Settle) return (carol, abi.encodeCall(manager.settle, (id)));
        return (carol, abi.encodeCall(manager.claim, (address(usdc), bob)));
    }

    function _run(Case memory c, uint256 id) internal {
        (address sender, bytes memory data) = _call(c.entry, id);
        IChannelManager.ChannelInfo memory before = _channel(id);
        Balances memory b0 = _balances();

        if (c.expected.length != 0) vm.expectRevert(c.expected);
        vm.prank(sender);
        // Under expectRevert a low-level call reports success when it reverted as expected.
        (bool success,) = address(manager).call(data);
        assertTrue(success, "call outcome");

        if (c.expected.length != 0) {
            assertEq(
                keccak256(abi.encode(_channel(id))),
                keccak256(abi.encode(before)),
                "refused: channel unchanged"
            );
            _assertBalanceDeltas(b0, 0, 0, 0);
        } else {
            _assertSuccess(c, id, before, b0);
        }
    }

    function _assertSuccess(
        Case memory c,
        uint256 id,
        IChannelManager.ChannelInfo memory before,
        Balances memory b0
    ) internal view {
        IChannelManager.ChannelInfo memory info = _channel(id);
        if (c.entry == Entry.TopUp) {
            assertEq(uint8(info.state), uint8(IChannelManager.ChannelState.Open));
            assertEq(info.depositB, TOPUP_TOTAL_B);
            assertEq(usdc.balanceOf(bob), b0.bob - (TOPUP_TOTAL_B - DEPOSIT_B));
            assertEq(usdc.balanceOf(address(manager)), b0.manager + (TOPUP_TOTAL_B - DEPOSIT_B));
        } else if (c.entry == Entry.Withdraw) {
            assertEq(uint8(info.state), uint8(IChannelManager.ChannelState.Open));
            assertEq(info.withdrawnA, WITHDRAW_TOTAL_A);
            assertEq(manager.holdings(id), uint256(DEPOSIT_A) + DEPOSIT_B - WITHDRAW_TOTAL_A);
            _assertBalanceDeltas(b0, int256(uint256(WITHDRAW_TOTAL_A)), 0, -int256(uint256(WITHDRAW_TOTAL_A)));
        } else if (c.entry == Entry.CooperativeClose) {
            assertEq(uint8(info.state), uint8(IChannelManager.ChannelState.Settled));
            assertEq(manager.holdings(id), 0);
            _assertBalanceDeltas(
                b0, int256(uint256(COOP_A)), int256(uint256(COOP_B)), -int256(uint256(COOP_A) + COOP_B)
            );
        } else if (c.entry == Entry.Close) {
            assertEq(uint8(info.state), uint8(IChannelManager.ChannelState.Closed));
            assertEq(info.closer, alice);
            assertEq(info.settleAfter, block.timestamp + PERIOD);
            assertEq(info.nonceB, CLOSE_NONCE_B);
            assertEq(info.transferredB, CLOSE_TRANSFERRED_B);
            _assertBalanceDeltas(b0, 0, 0, 0);
        } else if (c.entry == Entry.UpdateProof) {
            assertEq(uint8(info.state), uint8(IChannelManager.ChannelState.Closed));
            assertEq(info.settleAfter, before.settleAfter);
            assertEq(info.nonceA, UPDATE_NONCE_A);
            assertEq(info.transferredA, UPDATE_TRANSFERRED_A);
            assertEq(info.nonceB, BUILD_NONCE_B);
            _assertBalanceDeltas(b0, 0, 0, 0);
        } else if (c.entry == Entry.Settle) {
            assertEq(uint8(info.state), uint8(IChannelManager.ChannelState.Settled));
            // payoutA = 100 - 0 + 5 - 0; payoutB = 150 - 105.
            _assertBalanceDeltas(b0, 105e6, 45e6, -150e6);
        } else {
            revert("claim cannot succeed here");
        }
    }

    function _balances() internal view returns (Balances memory) {
        return Balances(usdc.balanceOf(alice), usdc.balanceOf(bob), usdc.balanceOf(address(manager)));
    }

    function _assertBalanceDeltas(Balances memory b0, int256 dAlice, int256 dBob, int256 dManager)
        internal
        view
    {
        assertEq(int256(usdc.balanceOf(alice)) - int256(b0.alice), dAlice, "alice balance delta");
        assertEq(int256(usdc.balanceOf(bob)) - int256(b0.bob), dBob, "bob balance delta");
        assertEq(
            int256(usdc.balanceOf(address(manager))) - int256(b0.manager), dManager, "manager balance delta"
        );
    }

    // ------------------------------------------------------------ open argument refusals

    enum Opener {
        Open,
        OpenWithPermit,
        OpenWithAuthorization
    }

    struct OpenCase {
        Opener opener;
        address token;
        address funder;
        address partner;
        uint256 deposit;
        uint32 period;
        bytes expected;
    }

    uint256 internal constant OPEN_DEPOSIT = 10e6;
    uint256 internal constant TOO_LARGE = uint256(type(uint96).max) + 1;

    function _openTable() internal view returns (OpenCase[] memory t) {
        t = new OpenCase[](24);
        uint256 n;
        for (uint256 k; k < 3; k++) {
            Opener o = Opener(k);
            address u = address(usdc);
            t[n++] = OpenCase(
                o,
                u,
                alice,
                address(0),
                OPEN_DEPOSIT,
                PERIOD,
                _err(IChannelManager.InvalidPartner.selector, address(0))
            );
            t[n++] = OpenCase(
                o, u, alice, alice, OPEN_DEPOSIT, PERIOD, _err(IChannelManager.InvalidPartner.selector, alice)
            );
            // carol is an EOA: an address without code is no token.
            t[n++] = OpenCase(
                o, carol, alice, bob, OPEN_DEPOSIT, PERIOD, _err(IChannelManager.InvalidToken.selector, carol)
            );
            t[n++] = OpenCase(
                o,
                u,
                alice,
                bob,
                OPEN_DEPOSIT,
                MIN_PERIOD - 1,
                abi.encodeWithSelector(
                    IChannelManager.ChallengePeriodOutOfRange.selector, MIN_PERIOD - 1, MIN_PERIOD, MAX_PERIOD
                )
            );
            t[n++] = OpenCase(
                o,
                u,
                alice,
                bob,
                OPEN_DEPOSIT,
                MAX_PERIOD + 1,
                abi.encodeWithSelector(
                    IChannelManager.ChallengePeriodOutOfRange.selector, MAX_PERIOD + 1, MIN_PERIOD, MAX_PERIOD
                )
            );
            t[n++] = OpenCase(
                o,
                u,
                alice,
                bob,
                TOO_LARGE,
                PERIOD,
                abi.encodeWithSelector(
                    IChannelManager.AmountTooLarge.selector, TOO_LARGE, uint256(type(uint96).max)
                )
            );
            // The bounds themselves are accepted.
            t[n++] = OpenCase(o, u, alice, bob, OPEN_DEPOSIT, MIN_PERIOD, "");
            t[n++] = OpenCase(o, u, alice, bob, OPEN_DEPOSIT, MAX_PERIOD, "");
        }
        assertEq(n, t.length, "open table size");
    }

    function _err(bytes4 selector, address a) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(selector, a);
    }

    function test_openArguments_refusedByAllThreeOpens() public {
        OpenCase[] memory table = _openTable();
        for (uint256 i; i < table.length; i++) {
            OpenCase memory c = table[i];
            console2.log("open case", i, uint256(c.opener));
            uint256 snapshot = vm.snapshotState();
            uint256 expectedId = manager.channelCount() + 1;
            (address sender, bytes memory data) = _openCall(c);
            uint256 aliceBefore = usdc.balanceOf(alice);

            if (c.expected.length != 0) vm.expectRevert(c.expected);
            vm.prank(sender);
            (bool success, bytes memory ret) = address(manager).call(data);
            assertTrue(success, "call outcome");

            if (c.expected.length != 0) {
                assertEq(manager.channelCount(), expectedId - 1, "no channel created");
                assertEq(usdc.balanceOf(alice), aliceBefore, "nothing taken");
            } else {
                assertEq(abi.decode(ret, (uint256)), expectedId, "returned id");
                IChannelManager.ChannelInfo memory info = _channel(expectedId);
                assertEq(uint8(info.state), uint8(IChannelManager.ChannelState.Open));
                assertEq(info.participantA, c.funder);
                assertEq(info.participantB, c.partner);
                assertEq(info.depositA, c.deposit);
                assertEq(info.challengePeriod, c.period);
                assertEq(usdc.balanceOf(alice), aliceBefore - c.deposit, "deposit taken");
            }
            vm.revertToState(snapshot);
        }
    }

    function _openCall(OpenCase memory c) internal view returns (address sender, bytes memory data) {
        uint256 deadline = block.timestamp + 1 hours;
        if (c.opener == Opener.Open) {
            return (c.funder, abi.encodeCall(manager.open, (c.token, c.partner, c.deposit, c.period)));
        }
        if (c.opener == Opener.OpenWithPermit) {
            // The funder submits itself: no funder signature needed.
            (uint8 v, bytes32 r, bytes32 s) = _signPermit(alicePk, address(manager), c.deposit, deadline);
            return (
                c.funder,
                abi.encodeCall(
                    manager.openWithPermit,
                    (c.token, c.funder, c.partner, c.deposit, c.period, deadline, v, r, s, bytes(""))
                )
            );
        }
        // openWithAuthorization, submitted by bob with alice's EIP-3009 signature.
        bytes32 salt = keccak256("states");
        (uint8 v2, bytes32 r2, bytes32 s2) = _signReceiveAuthorization(
            alicePk,
            address(manager),
            c.deposit,
            0,
            deadline,
            _openAuthorizationNonce(c.partner, c.period, salt)
        );
        return (
            bob,
            abi.encodeCall(
                manager.openWithAuthorization,
                (c.token, c.funder, c.partner, c.deposit, c.period, 0, deadline, salt, v2, r2, s2)
            )
        );
    }

    function test_openWithAuthorization_zeroFunder_invalidPartner() public {
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.InvalidPartner.selector, address(0)));
        vm.prank(bob);
        manager.openWithAuthorization(
            address(usdc), address(0), bob, OPEN_DEPOSIT, PERIOD, 0, block.timestamp + 1, bytes32(0), 27, 0, 0
        );
    }

    // ------------------------------------------------------------ each remaining refusal

    function test_close_byOutsider_notParticipant() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        bytes memory sig = _signProof(bobPk, id, 1, 1e6);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.NotParticipant.selector, id, carol));
        vm.prank(carol);
        manager.close(id, 1, 1e6, sig);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.NotParticipant.selector, id, carol));
        vm.prank(carol);
        manager.close(id, 0, 0, "");
    }

    function test_topUp_forOutsider_notParticipant() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.NotParticipant.selector, id, carol));
        vm.prank(carol);
        manager.topUp(id, carol, 10e6);
    }

    /// @dev Only participants may top up (an outsider's top-up could change the holdings under
    /// a co-signed cooperative close); a participant may fund either side.
    function test_topUp_byOutsiderRefused_byPartnerForOtherSideAccepted() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.NotParticipant.selector, id, carol));
        vm.prank(carol);
        manager.topUp(id, alice, 130e6);
        assertEq(usdc.balanceOf(carol), START_BALANCE);

        vm.expectEmit(address(manager));
        emit IChannelManager.Deposited(id, alice, 130e6, 30e6);
        vm.prank(bob);
        manager.topUp(id, alice, 130e6);
        assertEq(usdc.balanceOf(bob), START_BALANCE - DEPOSIT_B - 30e6);
        assertEq(usdc.balanceOf(alice), START_BALANCE - DEPOSIT_A);
        assertEq(_channel(id).depositA, 130e6);
    }

    function test_topUp_totalNotIncreased() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        vm.expectRevert(
            abi.encodeWithSelector(IChannelManager.TotalNotIncreased.selector, DEPOSIT_B, DEPOSIT_B)
        );
        vm.prank(bob);
        manager.topUp(id, bob, DEPOSIT_B);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.TotalNotIncreased.selector, DEPOSIT_A, 1));
        vm.prank(alice);
        manager.topUp(id, alice, 1);
    }

    function test_topUp_amountTooLarge() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.AmountTooLarge.selector, TOO_LARGE, uint256(type(uint96).max)
            )
        );
        vm.prank(bob);
        manager.topUp(id, bob, TOO_LARGE);
    }

    function test_withdraw_sameTotalTwice_totalNotIncreased() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        uint64 expiry = uint64(block.timestamp + 1 hours);
        bytes memory sigA = _signWithdraw(alicePk, id, bob, 20e6, expiry);
        bytes memory sigB = _signWithdraw(bobPk, id, bob, 20e6, expiry);
        manager.withdraw(id, bob, 20e6, expiry, sigA, sigB);
        // The replay of the same co-signed withdrawal pays nothing twice.
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.TotalNotIncreased.selector, 20e6, 20e6));
        manager.withdraw(id, bob, 20e6, expiry, sigA, sigB);
        assertEq(usdc.balanceOf(bob), START_BALANCE - DEPOSIT_B + 20e6);
    }

    function test_withdraw_moreThanHoldings_insufficientHoldings() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        uint64 expiry = uint64(block.timestamp + 1 hours);
        uint96 total = DEPOSIT_A + DEPOSIT_B + 1;
        bytes memory sigA = _signWithdraw(alicePk, id, alice, total, expiry);
        bytes memory sigB = _signWithdraw(bobPk, id, alice, total, expiry);
        vm.expectRevert(
            abi.encodeWithSelector(IChannelManager.InsufficientHoldings.selector, 150e6, 150e6 + 1)
        );
        manager.withdraw(id, alice, total, expiry, sigA, sigB);
        // Everything the channel holds is fine.
        _withdraw(id, alice, DEPOSIT_A + DEPOSIT_B);
        assertEq(manager.holdings(id), 0);
    }

    function test_withdraw_expired() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        uint64 expiry = uint64(block.timestamp + 10);
        bytes memory sigA = _signWithdraw(alicePk, id, alice, 5e6, expiry);
        bytes memory sigB = _signWithdraw(bobPk, id, alice, 5e6, expiry);
        vm.warp(expiry + 1);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.WithdrawExpired.selector, expiry, expiry + 1));
        manager.withdraw(id, alice, 5e6, expiry, sigA, sigB);
        // The expiry second itself is still valid.
        vm.warp(expiry);
        manager.withdraw(id, alice, 5e6, expiry, sigA, sigB);
        assertEq(_channel(id).withdrawnA, 5e6);
    }

    function test_withdraw_forOutsider_notParticipant() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        uint64 expiry = uint64(block.timestamp + 1 hours);
        bytes memory sigA = _signWithdraw(alicePk, id, carol, 5e6, expiry);
        bytes memory sigB = _signWithdraw(bobPk, id, carol, 5e6, expiry);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.NotParticipant.selector, id, carol));
        manager.withdraw(id, carol, 5e6, expiry, sigA, sigB);
    }

    function test_withdraw_wrongSigners_signerMismatch() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        uint64 expiry = uint64(block.timestamp + 1 hours);
        bytes memory sigA = _signWithdraw(alicePk, id, alice, 5e6, expiry);
        bytes memory sigB = _signWithdraw(bobPk, id, alice, 5e6, expiry);
        bytes memory sigC = _signWithdraw(carolPk, id, alice, 5e6, expiry);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, bob, carol));
        manager.withdraw(id, alice, 5e6, expiry, sigA, sigC);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, alice, bob));
        manager.withdraw(id, alice, 5e6, expiry, sigB, sigA);
        // A signature over another amount recovers someone else.
        bytes32 digest = manager.withdrawDigest(id, alice, 6e6, expiry);
        (bytes32 r, bytes32 s, uint8 v) = _split(sigB);
        vm.expectRevert(
            abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, alice, ecrecover(digest, v, r, s))
        );
        manager.withdraw(id, alice, 6e6, expiry, sigB, sigB);
    }

    function test_cooperativeClose_payoutsMismatch() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.PayoutsMismatch.selector, 150e6, 150e6 + 1));
        manager.cooperativeClose(
            id,
            100e6,
            50e6 + 1,
            _signCoopClose(alicePk, id, 100e6, 50e6 + 1),
            _signCoopClose(bobPk, id, 100e6, 50e6 + 1)
        );
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.PayoutsMismatch.selector, 150e6, 150e6 - 1));
        manager.cooperativeClose(
            id,
            100e6 - 1,
            50e6,
            _signCoopClose(alicePk, id, 100e6 - 1, 50e6),
            _signCoopClose(bobPk, id, 100e6 - 1, 50e6)
        );
        // After a withdrawal the payouts must match the lower holdings.
        _withdraw(id, bob, 10e6);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.PayoutsMismatch.selector, 140e6, 150e6));
        manager.cooperativeClose(
            id, 100e6, 50e6, _signCoopClose(alicePk, id, 100e6, 50e6), _signCoopClose(bobPk, id, 100e6, 50e6)
        );
    }

    function test_cooperativeClose_oneSignerTwice_signerMismatch() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        bytes memory sigB = _signCoopClose(bobPk, id, 100e6, 50e6);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, alice, bob));
        manager.cooperativeClose(id, 100e6, 50e6, sigB, sigB);
    }

    function test_close_emptyProofWithAmount() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.EmptyProofWithAmount.selector, 5e6));
        vm.prank(alice);
        manager.close(id, 0, 5e6, "");
        // Nonce zero, zero amount, no signature: the partner never paid.
        vm.prank(alice);
        manager.close(id, 0, 0, "");
        IChannelManager.ChannelInfo memory info = _channel(id);
        assertEq(uint8(info.state), uint8(IChannelManager.ChannelState.Closed));
        assertEq(info.nonceB, 0);
        assertEq(info.transferredB, 0);
    }

    function test_close_withOwnProof_signerMismatch() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        // alice must submit bob's proof, not one she signed.
        bytes memory own = _signProof(alicePk, id, 1, 1e6);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, bob, alice));
        vm.prank(alice);
        manager.close(id, 1, 1e6, own);
    }

    function test_updateProof_staleProof() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        vm.prank(alice);
        manager.close(id, 4, 20e6, _signProof(bobPk, id, 4, 20e6));
        // bob's proof recorded at close: less transferred (whatever the nonce), or as much with
        // an equal or lower nonce, is stale.
        bytes memory less = _signProof(bobPk, id, 9, 19e6);
        bytes memory same = _signProof(bobPk, id, 4, 20e6);
        bytes memory sameLower = _signProof(bobPk, id, 3, 20e6);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.StaleProof.selector, 4, 20e6, 9, 19e6));
        manager.updateProof(id, 9, 19e6, less);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.StaleProof.selector, 4, 20e6, 4, 20e6));
        manager.updateProof(id, 4, 20e6, same);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.StaleProof.selector, 4, 20e6, 3, 20e6));
        manager.updateProof(id, 3, 20e6, sameLower);
        // alice's side starts empty: an empty proof is stale too.
        bytes memory zero = _signProof(alicePk, id, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.StaleProof.selector, 0, 0, 0, 0));
        manager.updateProof(id, 0, 0, zero);
    }

    function test_updateProof_signerNotParticipant() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        vm.prank(alice);
        manager.close(id, 0, 0, "");
        bytes memory sig = _signProof(carolPk, id, 1, 1e6);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerNotParticipant.selector, carol));
        manager.updateProof(id, 1, 1e6, sig);
    }

    function test_signatures_malformed_invalidSignature() public {
        uint256 id = _openFunded(DEPOSIT_A, DEPOSIT_B);
        bytes memory good = _signProof(bobPk, id, 1, 1e6);
        (bytes32 r, bytes32 s, uint8 v) = _split(good);
        bytes[4] memory bad = [
            _highS(good),
            abi.encodePacked(r, s), // 64 bytes
            abi.encodePacked(r, s, v + 2), // v = 29 or 30
            abi.encodePacked(bytes32(0), s, v) // recovers to zero
        ];
        for (uint256 i; i < bad.length; i++) {
            vm.expectRevert(IChannelManager.InvalidSignature.selector);
            vm.prank(alice);
            manager.close(id, 1, 1e6, bad[i]);
        }
        vm.prank(alice);
        manager.close(id, 1, 1e6, good);
        bytes memory proofA = _signProof(alicePk, id, 2, 3e6);
        vm.expectRevert(IChannelManager.InvalidSignature.selector);
        manager.updateProof(id, 2, 3e6, _highS(proofA));
    }

    function test_claim_nothingToClaim() public {
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.NothingToClaim.selector, address(usdc), bob));
        manager.claim(address(usdc), bob);
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.NothingToClaim.selector, carol, alice));
        vm.prank(bob);
        manager.claim(carol, alice);
    }
}
