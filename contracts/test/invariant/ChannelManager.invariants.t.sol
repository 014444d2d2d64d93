// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {StdInvariant} from "forge-std/StdInvariant.sol";

import {IChannelManager} from "../../src/interfaces/IChannelManager.sol";
import {ChannelTestBase} from "../utils/ChannelTestBase.sol";
import {ChannelHandler} from "./ChannelHandler.sol";

/// @notice Invariants of ChannelManager (shared/design/PROTOCOL.md, "Contract invariants"), checked
/// after every call of a random campaign driven by `ChannelHandler`.
contract ChannelManagerInvariants is ChannelTestBase {
    /// @dev Handler violation categories (see ChannelHandler).
    uint256 internal constant V_FORMULA = 0;
    uint256 internal constant V_NONCE = 1;
    uint256 internal constant V_FROZEN = 2;
    uint256 internal constant V_IDS = 3;
    uint256 internal constant V_REVERT = 4;
    uint256 internal constant V_ROUTING = 5;

    /// @dev Campaign-wide call counts live in environment variables (the EVM state is reset
    /// between runs); coverage is asserted once this many runs have been summed.
    uint256 internal constant COVERAGE_MIN_RUNS = 128;
    string internal constant ENV_PREFIX = "FARTHING_INVARIANT_";

    uint256 internal davePk = 0xDA7E;
    address internal dave;
    address internal keeper;
    ChannelHandler internal handler;

    function setUp() public override {
        super.setUp();
        dave = vm.addr(davePk);
        vm.label(dave, "dave");
        usdc.mint(dave, START_BALANCE);
        vm.prank(dave);
        usdc.approve(address(manager), type(uint256).max);
        keeper = makeAddr("keeper");

        uint256[] memory pks = new uint256[](4);
        pks[0] = alicePk;
        pks[1] = bobPk;
        pks[2] = carolPk;
        pks[3] = davePk;
        handler = new ChannelHandler(
            manager,
            usdc,
            pks,
            keeper,
            ChannelHandler.Eip712({
                domainSeparator: _domainSeparator(address(manager), block.chainid),
                balanceProofTypehash: BALANCE_PROOF_TYPEHASH,
                withdrawTypehash: WITHDRAW_TYPEHASH,
                cooperativeCloseTypehash: COOPERATIVE_CLOSE_TYPEHASH
            })
        );
        // The handler plays the token's pauser and blacklister.
        usdc.transferOwnership(address(handler));
        assertEq(manager.DOMAIN_SEPARATOR(), _domainSeparator(address(manager), block.chainid));

        // Every run starts with two live channels (one funded on both sides): runs are short.
        handler.open(0, 0, 1_000e6 + 1, 1);
        handler.topUp(1, 1, 1, 500e6);
        handler.open(2, 1, 0, 3);

        // Duplicates weigh the draw: payments feed disputes, and disputes need closed channels.
        bytes4[] memory selectors = new bytes4[](20);
        selectors[0] = ChannelHandler.open.selector;
        selectors[1] = ChannelHandler.open.selector;
        selectors[2] = ChannelHandler.topUp.selector;
        selectors[3] = ChannelHandler.withdraw.selector;
        selectors[4] = ChannelHandler.pay.selector;
        selectors[5] = ChannelHandler.pay.selector;
        selectors[6] = ChannelHandler.pay.selector;
        selectors[7] = ChannelHandler.pay.selector;
        selectors[8] = ChannelHandler.close.selector;
        selectors[9] = ChannelHandler.updateProof.selector;
        selectors[10] = ChannelHandler.updateProof.selector;
        selectors[11] = ChannelHandler.updateProof.selector;
        selectors[12] = ChannelHandler.warp.selector;
        selectors[13] = ChannelHandler.settle.selector;
        selectors[14] = ChannelHandler.cooperativeClose.selector;
        selectors[15] = ChannelHandler.toggleBlacklist.selector;
        selectors[16] = ChannelHandler.togglePause.selector;
        selectors[17] = ChannelHandler.claim.selector;
        selectors[18] = ChannelHandler.donate.selector;
        selectors[19] = ChannelHandler.touchFinished.selector;
        targetContract(address(handler));
        targetSelector(StdInvariant.FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    // ------------------------------------------------------------ invariants

    /// @notice All invariants in one campaign: forge runs a separate campaign per `invariant_`
    /// function, and here every one would replay the same call sequences, so one function
    /// checks them all after every call (each assertion message names its invariant).
    function invariant_protocol() public view {
        _checkSolvency();
        _checkSettledPayoutsConserve();
        _checkNoncesNeverDecrease();
        _checkSettledChannelsFrozen();
        _checkPayoutsFollowFormula();
        _checkHoldingsMatchGhosts();
        _checkChannelIds();
        _checkHandlerExpectationsHold();
    }

    /// (1) The manager holds at least every non-settled channel's holdings plus every claimable
    /// payout; exactly that plus what was donated (so exactly equal without donations).
    function _checkSolvency() internal view {
        // Owed per the ghosts (not the contract's own `holdings`), and per the contract.
        uint256 owed = handler.totalClaimable();
        uint256 owedByContract = owed;
        uint256 n = handler.channelCountGhost();
        for (uint256 i; i < n; i++) {
            uint256 id = handler.channelIds(i);
            ChannelHandler.Ghost memory g = handler.ghostOf(id);
            if (!g.settled) owed += g.deposit[0] + g.deposit[1] - g.withdrawn[0] - g.withdrawn[1];
            owedByContract += manager.holdings(id);
        }
        uint256 balance = usdc.balanceOf(address(manager));
        assertGe(balance, owed, "(1) manager holds less than it owes");
        assertEq(balance, owed + handler.ghostDonations(), "(1) manager balance != owed + donations");
        if (handler.ghostDonations() == 0) {
            assertEq(balance, owed, "(1) without donations the balance is exact");
        }
        assertEq(owedByContract, owed, "(1) contract holdings differ from the ghosts");
    }

    /// (2) A settled channel paid out (directly or deferred) exactly deposits - withdrawals.
    function _checkSettledPayoutsConserve() internal view {
        uint256 n = handler.channelCountGhost();
        for (uint256 i; i < n; i++) {
            uint256 id = handler.channelIds(i);
            ChannelHandler.Ghost memory g = handler.ghostOf(id);
            if (!g.settled) continue;
            assertEq(
                g.payout[0] + g.payout[1],
                g.deposit[0] + g.deposit[1] - g.withdrawn[0] - g.withdrawn[1],
                "(2) settled payouts != deposits - withdrawals"
            );
        }
        // Deferred payouts are either still claimable or were claimed.
        assertEq(handler.totalClaimable(), handler.ghostClaimable(), "(2) claimable != ghost");
        assertEq(
            handler.ghostClaimable(), handler.ghostDeferred() - handler.ghostClaimed(), "(2) claimable ghosts"
        );
    }

    /// (3) On-chain nonces never decrease (checked after every call by the handler, and here
    /// against the last values it saw).
    function _checkNoncesNeverDecrease() internal view {
        _assertNoViolation(V_NONCE, "(3)");
        uint256 n = handler.channelCountGhost();
        for (uint256 i; i < n; i++) {
            uint256 id = handler.channelIds(i);
            ChannelHandler.Ghost memory g = handler.ghostOf(id);
            IChannelManager.ChannelInfo memory info = manager.getChannel(id);
            assertGe(info.nonceA, g.seenNonce[0], "(3) nonceA decreased");
            assertGe(info.nonceB, g.seenNonce[1], "(3) nonceB decreased");
        }
    }

    /// (4) A settled channel never changes again.
    function _checkSettledChannelsFrozen() internal view {
        _assertNoViolation(V_FROZEN, "(4)");
        uint256 n = handler.channelCountGhost();
        for (uint256 i; i < n; i++) {
            uint256 id = handler.channelIds(i);
            if (!handler.ghostOf(id).settled) continue;
            assertEq(
                abi.encode(manager.getChannel(id)),
                abi.encode(handler.snapshotOf(id)),
                "(4) settled channel changed"
            );
            assertEq(manager.holdings(id), 0, "(4) settled channel holds tokens");
        }
    }

    /// (5) Every settle paid per the formula (checked by the handler against getChannel read
    /// just before the settle), every cooperative close paid what was signed, and each payout
    /// went to its owner or, if the token refused, to `claimable`.
    function _checkPayoutsFollowFormula() internal view {
        _assertNoViolation(V_FORMULA, "(5)");
        _assertNoViolation(V_ROUTING, "(5)");
    }

    /// (6) Holdings, deposits and withdrawals of every channel match the ghosts.
    function _checkHoldingsMatchGhosts() internal view {
        uint256 n = handler.channelCountGhost();
        for (uint256 i; i < n; i++) {
            uint256 id = handler.channelIds(i);
            ChannelHandler.Ghost memory g = handler.ghostOf(id);
            IChannelManager.ChannelInfo memory info = manager.getChannel(id);
            assertEq(info.depositA, g.deposit[0], "(6) depositA");
            assertEq(info.depositB, g.deposit[1], "(6) depositB");
            assertEq(info.withdrawnA, g.withdrawn[0], "(6) withdrawnA");
            assertEq(info.withdrawnB, g.withdrawn[1], "(6) withdrawnB");
            uint256 expected = g.settled ? 0 : g.deposit[0] + g.deposit[1] - g.withdrawn[0] - g.withdrawn[1];
            assertEq(manager.holdings(id), expected, "(6) holdings != deposits - withdrawals");
        }
    }

    /// (7) channelCount is the number of successful opens; ids are 1..n, never reused.
    function _checkChannelIds() internal view {
        _assertNoViolation(V_IDS, "(7)");
        uint256 n = handler.channelCountGhost();
        assertEq(manager.channelCount(), handler.ghostOpens(), "(7) channelCount != successful opens");
        assertEq(n, handler.ghostOpens(), "(7) ghost ids");
        for (uint256 i; i < n; i++) {
            uint256 id = handler.channelIds(i);
            assertEq(id, i + 1, "(7) ids are not 1..n in order");
            IChannelManager.ChannelInfo memory info = manager.getChannel(id);
            ChannelHandler.Ghost memory g = handler.ghostOf(id);
            assertTrue(info.state != IChannelManager.ChannelState.None, "(7) opened channel unknown");
            assertEq(info.participantA, handler.actors(g.a), "(7) participantA");
            assertEq(info.participantB, handler.actors(g.b), "(7) participantB");
            assertEq(info.token, address(usdc), "(7) token");
        }
        assertTrue(
            manager.getChannel(n + 1).state == IChannelManager.ChannelState.None,
            "(7) a channel beyond the count"
        );
    }

    /// Every call the handler expected to succeed did, every call it expected to be refused was
    /// (with the right error), and each actor's token balance is exactly what the handler moved.
    function _checkHandlerExpectationsHold() internal view {
        _assertNoViolation(V_REVERT, "(h)");
        uint256 n = handler.actorCount();
        for (uint256 i; i < n; i++) {
            address actor = handler.actors(i);
            assertEq(usdc.balanceOf(actor), handler.expectedBalance(actor), "(h) actor balance != ghost");
        }
        assertEq(usdc.balanceOf(keeper), 0, "(h) the keeper never receives tokens");
    }

    /// The campaign is not vacuous: summed over runs, the interesting actions did happen.
    function afterInvariant() public {
        ChannelHandler.CallSummary memory s = handler.callSummary();
        uint256 runs = _accumulate("runs", 1);
        uint256 reportAt = vm.envOr(string.concat(ENV_PREFIX, "REPORT_AT"), uint256(0));
        bool check = runs >= COVERAGE_MIN_RUNS && reportAt == 0;
        _tally(false, "calls", s.calls);
        _tally(check, "opens", s.opens);
        _tally(check, "payments", s.payments);
        _tally(check, "topUps", s.topUps);
        _tally(check, "withdraws", s.withdraws);
        _tally(check, "closes", s.closes);
        _tally(check, "closesStale", s.closesStale);
        _tally(check, "updates", s.updates);
        _tally(check, "staleUpdatesRejected", s.staleUpdatesRejected);
        _tally(check, "forgedUpdatesRejected", s.forgedUpdatesRejected);
        _tally(check, "overcommitsAccepted", s.overcommitsAccepted);
        _tally(check, "lateUpdatesRejected", s.lateUpdatesRejected);
        _tally(check, "settles", s.settles);
        _tally(check, "settlesClamped", s.settlesClamped);
        _tally(check, "finishedTouchesRejected", s.finishedTouchesRejected);
        _tally(check, "earlySettlesRejected", s.earlySettlesRejected);
        _tally(check, "coopCloses", s.coopCloses);
        _tally(check, "coopClosesInDispute", s.coopClosesInDispute);
        _tally(check, "deferredPayouts", s.deferredPayouts);
        _tally(check, "claims", s.claims);
        _tally(check, "claimsRefused", s.claimsRefused);
        _tally(check, "donations", s.donations);
        _tally(check, "opensUnfunded", s.opensUnfunded);
        _tally(check, "topUpReplaysRejected", s.topUpReplaysRejected);
        _tally(check, "withdrawReplaysRejected", s.withdrawReplaysRejected);
        _tally(check, "coopMismatchRejected", s.coopMismatchRejected);
        _tally(check, "emptyClaimsRejected", s.emptyClaimsRejected);
        _tally(check, "blacklists", s.blacklists);
        _tally(check, "unblacklists", s.unblacklists);
        _tally(check, "pauses", s.pauses);
        _tally(check, "unpauses", s.unpauses);
        _tally(check, "warps", s.warps);
        _tally(false, "skipped", s.skipped);
        // Debugging aid: FARTHING_INVARIANT_REPORT_AT=<n> fails the n-th run to print the totals.
        if (runs == reportAt) revert(_report());
    }

    function _report() internal view returns (string memory out) {
        string[34] memory names = [
            "runs",
            "calls",
            "opens",
            "opensUnfunded",
            "topUps",
            "topUpReplaysRejected",
            "withdraws",
            "withdrawReplaysRejected",
            "payments",
            "closes",
            "closesStale",
            "updates",
            "staleUpdatesRejected",
            "forgedUpdatesRejected",
            "overcommitsAccepted",
            "lateUpdatesRejected",
            "settles",
            "settlesClamped",
            "finishedTouchesRejected",
            "earlySettlesRejected",
            "coopCloses",
            "coopClosesInDispute",
            "coopMismatchRejected",
            "deferredPayouts",
            "claims",
            "claimsRefused",
            "emptyClaimsRejected",
            "blacklists",
            "unblacklists",
            "pauses",
            "unpauses",
            "donations",
            "warps",
            "skipped"
        ];
        for (uint256 i; i < names.length; i++) {
            uint256 total = vm.envOr(string.concat(ENV_PREFIX, names[i]), uint256(0));
            out = string.concat(out, names[i], "=", vm.toString(total), " ");
        }
    }

    // ------------------------------------------------------------ helpers

    function _assertNoViolation(uint256 category, string memory tag) internal view {
        (uint256 count, string memory first) = handler.violations(category);
        assertEq(count, 0, string.concat(tag, " handler saw: ", first));
    }

    /// @dev Adds `amount` to the campaign-wide counter `name` and, once enough runs were summed,
    /// requires it to be positive.
    function _tally(bool check, string memory name, uint256 amount) internal {
        uint256 total = _accumulate(name, amount);
        if (check) assertGt(total, 0, string.concat("campaign never did: ", name));
    }

    /// @dev Adds `amount` to the campaign-wide counter `name` and returns the new total.
    function _accumulate(string memory name, uint256 amount) internal returns (uint256 total) {
        string memory key = string.concat(ENV_PREFIX, name);
        total = vm.envOr(key, uint256(0)) + amount;
        vm.setEnv(key, vm.toString(total));
    }
}
