// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";

import {ChannelManager} from "../../src/ChannelManager.sol";
import {IChannelManager} from "../../src/interfaces/IChannelManager.sol";
import {MockUSDC} from "../../src/MockUSDC.sol";

/// @notice Drives the real ChannelManager and MockUSDC through random, mostly valid actions of a
/// few actors with known keys, and keeps ghost state to check the contract against.
/// @dev Every call the handler expects to succeed goes through try/catch: an unexpected revert, or
/// a call that should have reverted and did not, is recorded as a violation (a revert would only
/// be discarded, since `fail_on_revert = false`). The invariant suite asserts no violations.
/// Channel side 0 is participant A (the opener), side 1 is participant B.
contract ChannelHandler is CommonBase, StdCheats, StdUtils {
    // ------------------------------------------------------------ types and constants

    /// @dev One balance proof as the partner keeps it: signed by the payer.
    struct SignedProof {
        uint64 nonce;
        uint128 transferred;
        bytes signature;
    }

    /// @dev Ghost state of one channel, indexed by side (0 = A, 1 = B).
    struct Ghost {
        uint8 a;
        uint8 b;
        uint256[2] deposit;
        uint256[2] withdrawn;
        /// @dev Paid at settlement, directly or deferred to `claimable`.
        uint256[2] payout;
        /// @dev Highest on-chain nonce seen so far (`nonceA`, `nonceB`).
        uint64[2] seenNonce;
        bool settled;
    }

    /// @notice Number of successful (or, for the `*Rejected` ones, correctly refused) actions.
    struct CallSummary {
        uint256 calls;
        uint256 opens;
        uint256 opensUnfunded;
        uint256 topUps;
        uint256 topUpReplaysRejected;
        uint256 withdraws;
        uint256 withdrawReplaysRejected;
        uint256 payments;
        uint256 closes;
        uint256 closesStale;
        uint256 updates;
        uint256 staleUpdatesRejected;
        uint256 forgedUpdatesRejected;
        uint256 overcommitsAccepted;
        uint256 lateUpdatesRejected;
        uint256 settles;
        uint256 settlesClamped;
        uint256 earlySettlesRejected;
        uint256 finishedTouchesRejected;
        uint256 coopCloses;
        uint256 coopClosesInDispute;
        uint256 coopMismatchRejected;
        uint256 deferredPayouts;
        uint256 claims;
        uint256 claimsRefused;
        uint256 emptyClaimsRejected;
        uint256 blacklists;
        uint256 unblacklists;
        uint256 pauses;
        uint256 unpauses;
        uint256 donations;
        uint256 warps;
        uint256 skipped;
    }

    /// @dev A proof `updateProof` submits, with what was recorded before. Kinds: from the signer's
    /// history (newer or stale), forged with a higher nonce and a smaller amount, or with a nonce
    /// at or below the recorded one and a larger amount (an over-commitment).
    struct Candidate {
        uint64 nonce;
        uint128 transferred;
        bytes signature;
        uint8 kind;
        uint64 recordedNonce;
        uint128 recordedTransferred;
    }

    uint8 internal constant KIND_HISTORY = 0;
    uint8 internal constant KIND_FORGED_SMALLER = 1;
    uint8 internal constant KIND_OVERCOMMIT = 2;

    /// @dev Violation categories, one per invariant the handler checks on the fly.
    uint256 internal constant V_FORMULA = 0; // settle/coop payouts differ from the formula or the request
    uint256 internal constant V_NONCE = 1; // an on-chain nonce went down
    uint256 internal constant V_FROZEN = 2; // a settled channel changed, or a finished one accepted a call
    uint256 internal constant V_IDS = 3; // an open returned an unexpected or reused id
    uint256 internal constant V_REVERT = 4; // a valid call reverted, or an invalid one did not
    uint256 internal constant V_ROUTING = 5; // tokens went to the wrong place (paid vs deferred, amounts)
    uint256 internal constant V_COUNT = 6;

    /// @dev Few channels at once, so each sees many actions; a bounded total keeps checks cheap.
    uint256 internal constant MAX_LIVE_CHANNELS = 3;
    uint256 internal constant MAX_CHANNELS = 12;
    uint256 internal constant MAX_AMOUNT = 5_000e6;
    uint256 internal constant MAX_DONATION = 1_000e6;
    uint32 internal constant SHORT_PERIOD = 2 hours;

    /// @dev EIP-712 inputs, computed by the shared fixture independently of the contract.
    struct Eip712 {
        bytes32 domainSeparator;
        bytes32 balanceProofTypehash;
        bytes32 withdrawTypehash;
        bytes32 cooperativeCloseTypehash;
    }

    // ------------------------------------------------------------ state

    ChannelManager public immutable manager;
    MockUSDC public immutable usdc;
    address public immutable keeper;
    uint32 internal immutable minPeriod;
    uint32 internal immutable maxPeriod;
    bytes32 internal immutable domainSeparator;
    bytes32 internal immutable balanceProofTypehash;
    bytes32 internal immutable withdrawTypehash;
    bytes32 internal immutable cooperativeCloseTypehash;

    uint256[] internal pks;
    address[] public actors;

    uint256[] public channelIds;
    mapping(uint256 id => Ghost) internal ghosts;
    /// @dev proofs[id][side]: every proof side signed, in order; [0] is the empty proof (0, 0, "").
    mapping(uint256 id => mapping(uint256 side => SignedProof[])) internal proofs;
    mapping(uint256 id => IChannelManager.ChannelInfo) internal snapshots;

    /// @notice What each actor's token balance must be, from every token movement the handler made.
    mapping(address actor => uint256) public expectedBalance;

    uint256 public ghostOpens;
    uint256 public ghostDonations;
    /// @notice Sum of all payouts deferred to `claimable`, of all claimed, and what is left.
    uint256 public ghostDeferred;
    uint256 public ghostClaimed;
    uint256 public ghostClaimable;
    uint256 public ghostTime;

    CallSummary internal summary;
    uint256[V_COUNT] internal violationCounts;
    string[V_COUNT] internal firstViolations;

    constructor(
        ChannelManager manager_,
        MockUSDC usdc_,
        uint256[] memory pks_,
        address keeper_,
        Eip712 memory eip712
    ) {
        manager = manager_;
        usdc = usdc_;
        keeper = keeper_;
        minPeriod = manager_.minChallengePeriod();
        maxPeriod = manager_.maxChallengePeriod();
        domainSeparator = eip712.domainSeparator;
        balanceProofTypehash = eip712.balanceProofTypehash;
        withdrawTypehash = eip712.withdrawTypehash;
        cooperativeCloseTypehash = eip712.cooperativeCloseTypehash;
        for (uint256 i; i < pks_.length; i++) {
            pks.push(pks_[i]);
            address actor = vm.addr(pks_[i]);
            actors.push(actor);
            expectedBalance[actor] = usdc_.balanceOf(actor);
        }
        ghostTime = block.timestamp;
    }

    /// @dev Keeps time monotonic across calls, then checks nonces and settled snapshots after the
    /// action (so invariants 3 and 4 are checked after every call, not only at the end).
    modifier step() {
        if (block.timestamp < ghostTime) vm.warp(ghostTime);
        summary.calls++;
        _;
        _afterStep();
    }

    // ------------------------------------------------------------ actions

    /// @notice A random actor opens to another one, with a deposit that may be zero.
    function open(uint256 openerSeed, uint256 partnerSeed, uint256 deposit, uint256 period) external step {
        if (channelIds.length >= MAX_CHANNELS || _liveChannels() >= MAX_LIVE_CHANNELS) return _skip();
        uint256 n = actors.length;
        uint256 ai = openerSeed % n;
        uint256 bi = (ai + 1 + partnerSeed % (n - 1)) % n;
        address a = actors[ai];
        deposit = deposit % 4 == 0 ? 0 : bound(deposit, 1, MAX_AMOUNT);
        if (deposit != 0 && !_canMove(a)) deposit = 0; // a refused transfer would revert the open
        uint32 p = uint32(
            period % 3 == 0 ? bound(period, minPeriod, maxPeriod) : bound(period, minPeriod, SHORT_PERIOD)
        );

        uint256 expectedId = manager.channelCount() + 1;
        if (manager.getChannel(expectedId).state != IChannelManager.ChannelState.None) {
            _violate(V_IDS, "open: the next id already holds a channel");
        }
        address b = actors[bi];
        vm.prank(a);
        try manager.open(address(usdc), b, deposit, p) returns (uint256 id) {
            if (id != expectedId) _violate(V_IDS, "open: id is not channelCount + 1");
            for (uint256 i; i < channelIds.length; i++) {
                if (channelIds[i] == id) _violate(V_IDS, "open: id reused");
            }
            channelIds.push(id);
            ghostOpens++;
            Ghost storage g = ghosts[id];
            g.a = uint8(ai);
            g.b = uint8(bi);
            g.deposit[0] = deposit;
            proofs[id][0].push(SignedProof(0, 0, ""));
            proofs[id][1].push(SignedProof(0, 0, ""));
            expectedBalance[a] -= deposit;
            summary.opens++;
            if (deposit == 0) summary.opensUnfunded++;
        } catch (bytes memory err) {
            _unexpected("open", err);
        }
    }

    /// @notice Raise one side's total deposit, paid by that side or (sometimes) by another actor.
    function topUp(uint256 channelSeed, uint256 sideSeed, uint256 payerSeed, uint256 amount) external step {
        (uint256 id, bool found) = _pick(channelSeed, IChannelManager.ChannelState.Open);
        if (!found) return _skip();
        Ghost storage g = ghosts[id];
        uint256 side = sideSeed % 2;
        address participant = _party(g, side);
        // Usually the participant itself; sometimes its partner funds it; sometimes an outsider
        // tries (only participants may top up).
        address payer = payerSeed % 4 == 0 ? actors[(payerSeed / 4) % actors.length] : participant;
        if (!_canMove(payer)) return _skip();
        amount = bound(amount, 1, MAX_AMOUNT);
        uint256 total = g.deposit[side] + amount;

        vm.prank(payer);
        if (payer != _party(g, 0) && payer != _party(g, 1)) {
            try manager.topUp(id, participant, total) {
                _violate(V_REVERT, "topUp: outsider accepted");
            } catch (bytes memory err) {
                _expectSelector(err, IChannelManager.NotParticipant.selector, "topUp by outsider");
            }
            return;
        }
        try manager.topUp(id, participant, total) {
            g.deposit[side] = total;
            expectedBalance[payer] -= amount;
            summary.topUps++;
        } catch (bytes memory err) {
            return _unexpected("topUp", err);
        }
        // The same call again must not pay twice.
        if (payerSeed % 3 == 0) {
            vm.prank(payer);
            try manager.topUp(id, participant, total) {
                _violate(V_REVERT, "topUp: replayed total accepted");
            } catch (bytes memory err) {
                _expectSelector(err, IChannelManager.TotalNotIncreased.selector, "topUp replay");
                summary.topUpReplaysRejected++;
            }
        }
    }

    /// @notice Co-signed withdrawal, usually within what the participant owns off-chain and
    /// sometimes anything up to what the channel holds (both sign, so the contract accepts it).
    function withdraw(uint256 channelSeed, uint256 sideSeed, uint256 amount, uint256 expiryDelay)
        external
        step
    {
        (uint256 id, bool found) = _pick(channelSeed, IChannelManager.ChannelState.Open);
        if (!found) return _skip();
        Ghost storage g = ghosts[id];
        uint256 side = sideSeed % 2;
        address participant = _party(g, side);
        if (!_canMove(participant)) return _skip(); // the payout transfer would revert
        uint256 held = _ghostHoldings(g);
        uint256 max = held;
        if (sideSeed % 4 != 0) {
            int256 own = _offchainBalance(id, side);
            max = own <= 0 ? 0 : _min(uint256(own), held);
        }
        if (max == 0) return _skip();
        amount = bound(amount, 1, max);
        uint256 total = g.withdrawn[side] + amount;
        uint64 expiry = uint64(block.timestamp + bound(expiryDelay, 0, 1 days));
        bytes32 digest =
            _digest(keccak256(abi.encode(withdrawTypehash, id, participant, uint96(total), expiry)));
        bytes memory sigA = _sign(pks[g.a], digest);
        bytes memory sigB = _sign(pks[g.b], digest);

        uint256 before = usdc.balanceOf(participant);
        vm.prank(keeper);
        try manager.withdraw(id, participant, total, expiry, sigA, sigB) {
            g.withdrawn[side] = total;
            expectedBalance[participant] += amount;
            if (usdc.balanceOf(participant) != before + amount) {
                _violate(V_ROUTING, "withdraw: amount not received");
            }
            summary.withdraws++;
        } catch (bytes memory err) {
            return _unexpected("withdraw", err);
        }
        // Replaying the same co-signed withdrawal must fail.
        if (expiryDelay % 3 == 0) {
            vm.prank(keeper);
            try manager.withdraw(id, participant, total, expiry, sigA, sigB) {
                _violate(V_REVERT, "withdraw: replay accepted");
            } catch (bytes memory err) {
                _expectSelector(err, IChannelManager.TotalNotIncreased.selector, "withdraw replay");
                summary.withdrawReplaysRejected++;
            }
        }
    }

    /// @notice A burst of one to four off-chain payments on one channel, in random directions.
    /// Each raises the payer's nonce (by 1 to 3, as after a crash skip) and cumulative amount and
    /// is signed by the payer. Only what the payer can afford.
    function pay(uint256 channelSeed, uint256 directions, uint256 amountSeed, uint256 nonceSeed)
        external
        step
    {
        (uint256 id, bool found) = _pick(channelSeed, IChannelManager.ChannelState.Open);
        if (!found) return _skip();
        uint256 count = 1 + nonceSeed % 4;
        for (uint256 i; i < count; i++) {
            uint256 side = (directions >> i) & 1;
            int256 available = _offchainBalance(id, side);
            if (available <= 0) continue;
            uint256 amount = bound(uint256(keccak256(abi.encode(amountSeed, i))), 1, uint256(available));
            _signPayment(id, side, amount, 1 + (nonceSeed >> (8 + 2 * i)) % 3);
        }
    }

    function _signPayment(uint256 id, uint256 side, uint256 amount, uint256 nonceStep) internal {
        SignedProof[] storage history = proofs[id][side];
        SignedProof storage last = history[history.length - 1];
        uint64 nonce = last.nonce + uint64(nonceStep);
        uint128 transferred = last.transferred + uint128(amount);
        bytes32 digest = _proofDigest(id, nonce, transferred);
        if (digest != manager.balanceProofDigest(id, nonce, transferred)) {
            _violate(V_REVERT, "pay: balance proof digest differs from the contract's");
        }
        Ghost storage g = ghosts[id];
        history.push(SignedProof(nonce, transferred, _sign(pks[side == 0 ? g.a : g.b], digest)));
        summary.payments++;
    }

    /// @notice Unilateral close with the partner's latest proof or a deliberately stale one
    /// (possibly the empty proof).
    function close(uint256 channelSeed, uint256 closerSeed, uint256 proofSeed) external step {
        (uint256 id, bool found) = _pick(channelSeed, IChannelManager.ChannelState.Open);
        if (!found) return _skip();
        _close(id, closerSeed % 2, proofSeed);
    }

    function _close(uint256 id, uint256 closerSide, uint256 proofSeed) internal {
        SignedProof[] storage history = proofs[id][1 - closerSide];
        uint256 latest = history.length - 1;
        bool stale = proofSeed % 2 == 0 && latest > 0;
        uint256 idx = stale ? (proofSeed / 2) % latest : latest;
        SignedProof memory p = history[idx];

        vm.prank(_party(ghosts[id], closerSide));
        try manager.close(id, p.nonce, p.transferred, p.signature) {
            summary.closes++;
            if (stale) summary.closesStale++;
        } catch (bytes memory err) {
            _unexpected("close", err);
        }
    }

    /// @notice During (or, to check the refusal, after) the challenge period, a watchtower or the
    /// other participant submits a proof of one side: a newer one from the signer's history, a
    /// stale one, or one the signer forged against itself (a higher nonce with a smaller amount,
    /// which must be refused; a lower nonce with a larger amount, which commits it to pay more
    /// and must not lower the recorded nonce). The contract keeps the proof that transfers more,
    /// or as much with a higher nonce; the handler checks exactly that. With no channel in
    /// dispute, a participant of an open channel starts one instead (a unilateral close).
    function updateProof(uint256 channelSeed, uint256 signerSeed, uint256 proofSeed) external step {
        (uint256 id, bool found) = _pick(channelSeed, IChannelManager.ChannelState.Closed);
        if (!found) {
            (id, found) = _pick(channelSeed, IChannelManager.ChannelState.Open);
            if (!found) return _skip();
            return _close(id, signerSeed % 2, proofSeed);
        }
        IChannelManager.ChannelInfo memory info = manager.getChannel(id);
        uint256 side = signerSeed % 2;
        // Forged proofs (modes 5 and 6) need a recorded proof: take the side that has one.
        if ((proofSeed % 8 == 5 || proofSeed % 8 == 6) && (side == 0 ? info.nonceA : info.nonceB) == 0) {
            side = 1 - side;
        }
        Candidate memory p = _candidate(id, side, info, proofSeed);
        bool accept = p.transferred > p.recordedTransferred
            || (p.transferred == p.recordedTransferred && p.nonce > p.recordedNonce);
        bool late = block.timestamp >= info.settleAfter;

        vm.prank(proofSeed % 2 == 0 ? keeper : _party(ghosts[id], 1 - side));
        try manager.updateProof(id, p.nonce, p.transferred, p.signature) {
            if (late || !accept) return _violate(V_REVERT, "updateProof: late or stale proof accepted");
            IChannelManager.ChannelInfo memory post = manager.getChannel(id);
            (uint64 n, uint128 t) =
                side == 0 ? (post.nonceA, post.transferredA) : (post.nonceB, post.transferredB);
            if (t != p.transferred) _violate(V_FORMULA, "updateProof: amount not recorded");
            if (n != (p.nonce > p.recordedNonce ? p.nonce : p.recordedNonce)) {
                _violate(V_NONCE, "updateProof: recorded nonce is not the higher one");
            }
            if (p.kind == KIND_OVERCOMMIT) summary.overcommitsAccepted++;
            else summary.updates++;
        } catch (bytes memory err) {
            if (late) {
                _expectSelector(err, IChannelManager.ChallengePeriodOver.selector, "late updateProof");
                summary.lateUpdatesRejected++;
            } else if (!accept) {
                _expectSelector(err, IChannelManager.StaleProof.selector, "stale updateProof");
                if (p.kind == KIND_FORGED_SMALLER) summary.forgedUpdatesRejected++;
                else summary.staleUpdatesRejected++;
            } else {
                _unexpected("updateProof", err);
            }
        }
    }

    function _candidate(uint256 id, uint256 side, IChannelManager.ChannelInfo memory info, uint256 seed)
        internal
        view
        returns (Candidate memory p)
    {
        (p.recordedNonce, p.recordedTransferred) =
            side == 0 ? (info.nonceA, info.transferredA) : (info.nonceB, info.transferredB);
        uint256 pk = pks[side == 0 ? ghosts[id].a : ghosts[id].b];
        SignedProof[] storage history = proofs[id][side];
        uint256 mode = seed % 8;
        if (mode == 5 && p.recordedTransferred > 0) {
            p.kind = KIND_FORGED_SMALLER;
            p.nonce = p.recordedNonce + 1 + uint64((seed >> 8) % 100);
            p.transferred = p.recordedTransferred - 1 - uint128((seed >> 16) % p.recordedTransferred);
        } else if (mode == 6 && p.recordedNonce > 0) {
            p.kind = KIND_OVERCOMMIT;
            p.nonce = 1 + uint64((seed >> 8) % p.recordedNonce); // at or below the recorded nonce
            p.transferred = p.recordedTransferred + 1;
        } else {
            // From the signer's history: above the recorded nonce (modes 0-3 and 7) when there is one
            // (firstNewer is the first such index; history[0] is the empty proof), else at or below.
            uint256 firstNewer = history.length;
            for (uint256 i = 1; i < history.length; i++) {
                if (history[i].nonce > p.recordedNonce) {
                    firstNewer = i;
                    break;
                }
            }
            uint256 idx = mode != 4 && firstNewer < history.length
                ? firstNewer + (seed >> 8) % (history.length - firstNewer)
                : (seed >> 8) % firstNewer;
            p.nonce = history[idx].nonce;
            p.transferred = history[idx].transferred;
            p.signature = history[idx].signature;
            // A participant never signs nonce 0; sign it here to check it is refused as stale.
            if (p.nonce == 0) p.signature = _sign(pk, _proofDigest(id, 0, 0));
            return p;
        }
        p.signature = _sign(pk, _proofDigest(id, p.nonce, p.transferred));
    }

    /// @notice Time moves forward: usually minutes to hours, sometimes up to a month.
    function warp(uint256 seconds_) external step {
        seconds_ = seconds_ % 5 == 0 ? bound(seconds_, 1, 31 days) : bound(seconds_, 1, 3 hours);
        ghostTime = block.timestamp + seconds_;
        vm.warp(ghostTime);
        summary.warps++;
    }

    /// @notice Settle a closed channel: refused before `settleAfter` (unless the action first waits
    /// for it), and then paying exactly the formula, checked against getChannel read just before.
    function settle(uint256 channelSeed, uint256 waitSeed) external step {
        (uint256 id, bool found) = _pick(channelSeed, IChannelManager.ChannelState.Closed);
        if (!found) return _skip();
        IChannelManager.ChannelInfo memory info = manager.getChannel(id);
        if (block.timestamp < info.settleAfter) {
            if (waitSeed % 3 != 0) {
                ghostTime = info.settleAfter;
                vm.warp(ghostTime);
                summary.warps++;
            } else {
                vm.prank(keeper);
                try manager.settle(id) {
                    _violate(V_REVERT, "settle: accepted during the challenge period");
                } catch (bytes memory err) {
                    _expectSelector(err, IChannelManager.ChallengePeriodActive.selector, "early settle");
                    summary.earlySettlesRejected++;
                }
                return;
            }
        }
        (uint256 payoutA, uint256 payoutB, bool clamped) = expectedSettlement(info);
        Balances memory before = _balances(info);
        vm.prank(keeper);
        try manager.settle(id) {
            _recordPayout(id, info, before, payoutA, payoutB);
            summary.settles++;
            if (clamped) summary.settlesClamped++;
        } catch (bytes memory err) {
            _unexpected("settle", err);
        }
    }

    /// @notice Cooperative close with the final balances from the latest off-chain state, while
    /// open or during a dispute. Sometimes first tries payouts that do not add up.
    function cooperativeClose(uint256 channelSeed, bool inDispute, uint256 mismatchSeed) external step {
        (uint256 id, bool found) = _pick(
            channelSeed, inDispute ? IChannelManager.ChannelState.Closed : IChannelManager.ChannelState.Open
        );
        if (!found) {
            (id, found) = _pick(
                channelSeed,
                inDispute ? IChannelManager.ChannelState.Open : IChannelManager.ChannelState.Closed
            );
        }
        if (!found) return _skip();
        Ghost storage g = ghosts[id];
        IChannelManager.ChannelInfo memory info = manager.getChannel(id);
        uint256 held = _ghostHoldings(g);
        int256 netA = _offchainBalance(id, 0);
        uint256 payoutA = netA <= 0 ? 0 : _min(uint256(netA), held);
        uint256 payoutB = held - payoutA;

        if (mismatchSeed % 5 == 0) {
            uint256 badB = payoutB + 1 + mismatchSeed % 1000;
            bytes32 badDigest = _coopDigest(id, payoutA, badB);
            bytes memory badA = _sign(pks[g.a], badDigest);
            bytes memory badSigB = _sign(pks[g.b], badDigest);
            vm.prank(keeper);
            try manager.cooperativeClose(id, payoutA, badB, badA, badSigB) {
                return _violate(V_REVERT, "cooperativeClose: payouts above holdings accepted");
            } catch (bytes memory err) {
                _expectSelector(err, IChannelManager.PayoutsMismatch.selector, "mismatched cooperativeClose");
                summary.coopMismatchRejected++;
            }
        }

        bytes32 digest = _coopDigest(id, payoutA, payoutB);
        bytes memory sigA = _sign(pks[g.a], digest);
        bytes memory sigB = _sign(pks[g.b], digest);
        Balances memory before = _balances(info);
        bool disputed = info.state == IChannelManager.ChannelState.Closed;
        vm.prank(keeper);
        try manager.cooperativeClose(id, payoutA, payoutB, sigA, sigB) {
            _recordPayout(id, info, before, payoutA, payoutB);
            summary.coopCloses++;
            if (disputed) summary.coopClosesInDispute++;
        } catch (bytes memory err) {
            _unexpected("cooperativeClose", err);
        }
    }

    /// @notice Blacklist one actor at a time; the next call lifts it.
    function toggleBlacklist(uint256 actorSeed) external step {
        for (uint256 i; i < actors.length; i++) {
            if (usdc.isBlacklisted(actors[i])) {
                usdc.unBlacklist(actors[i]);
                summary.unblacklists++;
                return;
            }
        }
        usdc.blacklist(actors[actorSeed % actors.length]);
        summary.blacklists++;
    }

    /// @notice Unpause if paused; otherwise pause a third of the time.
    function togglePause(uint256 seed) external step {
        if (usdc.paused()) {
            usdc.unpause();
            summary.unpauses++;
        } else if (seed % 3 == 0) {
            usdc.pause();
            summary.pauses++;
        } else {
            _skip();
        }
    }

    /// @notice A watchtower claims an actor's deferred payout (preferring an actor who has one);
    /// refused while the token still refuses, and for an actor with nothing claimable.
    function claim(uint256 actorSeed) external step {
        uint256 n = actors.length;
        address owner = actors[actorSeed % n];
        for (uint256 i; i < n; i++) {
            address candidate = actors[(actorSeed % n + i) % n];
            if (manager.claimable(address(usdc), candidate) != 0) {
                owner = candidate;
                break;
            }
        }
        uint256 amount = manager.claimable(address(usdc), owner);
        // Half the time the token first lets the owner through again (as it eventually would).
        if (amount != 0 && !_canMove(owner) && actorSeed % 2 == 0) {
            if (usdc.paused()) {
                usdc.unpause();
                summary.unpauses++;
            }
            if (usdc.isBlacklisted(owner)) {
                usdc.unBlacklist(owner);
                summary.unblacklists++;
            }
        }
        bool canReceive = _canMove(owner);
        uint256 before = usdc.balanceOf(owner);
        vm.prank(keeper);
        try manager.claim(address(usdc), owner) {
            if (amount == 0 || !canReceive) return _violate(V_REVERT, "claim: accepted with nothing to pay");
            if (usdc.balanceOf(owner) != before + amount) _violate(V_ROUTING, "claim: amount not received");
            if (manager.claimable(address(usdc), owner) != 0) {
                _violate(V_ROUTING, "claim: claimable not zeroed");
            }
            expectedBalance[owner] += amount;
            ghostClaimed += amount;
            ghostClaimable -= amount;
            summary.claims++;
        } catch (bytes memory err) {
            if (amount == 0) {
                _expectSelector(err, IChannelManager.NothingToClaim.selector, "empty claim");
                summary.emptyClaimsRejected++;
            } else if (!canReceive) {
                if (manager.claimable(address(usdc), owner) != amount) {
                    _violate(V_ROUTING, "claim: refused claim lost the amount");
                }
                summary.claimsRefused++;
            } else {
                _unexpected("claim", err);
            }
        }
    }

    /// @notice Anything but a claim on a settled channel, and topUp/withdraw/close on a closed
    /// one, must be refused for its state (with otherwise valid arguments and signatures).
    function touchFinished(uint256 channelSeed, uint256 op, uint256 amount) external step {
        (uint256 id, bool found) = _pick(channelSeed, IChannelManager.ChannelState.Settled);
        if (!found || op % 8 == 7) (id, found) = _pick(channelSeed, IChannelManager.ChannelState.Closed);
        if (!found) return _skip();
        Ghost storage g = ghosts[id];
        bool settled = g.settled;
        op = settled ? op % 6 : op % 3;
        address a = actors[g.a];
        amount = bound(amount, 1, MAX_AMOUNT);
        bytes memory data;
        if (op == 0) {
            data = abi.encodeCall(manager.topUp, (id, a, g.deposit[0] + amount));
        } else if (op == 1) {
            uint256 total = g.withdrawn[0] + 1;
            uint64 expiry = uint64(block.timestamp + 1 hours);
            bytes32 digest = _digest(keccak256(abi.encode(withdrawTypehash, id, a, uint96(total), expiry)));
            data = abi.encodeCall(
                manager.withdraw,
                (id, a, total, uint256(expiry), _sign(pks[g.a], digest), _sign(pks[g.b], digest))
            );
        } else if (op == 2) {
            data = abi.encodeCall(manager.close, (id, uint64(0), uint128(0), ""));
        } else if (op == 3) {
            data = abi.encodeCall(manager.settle, (id));
        } else if (op == 4) {
            (uint64 nonce, uint128 transferred) = (g.seenNonce[0] + 1, uint128(amount));
            bytes memory sig = _sign(pks[g.a], _proofDigest(id, nonce, transferred));
            data = abi.encodeCall(manager.updateProof, (id, nonce, transferred, sig));
        } else {
            uint256 payoutA = g.deposit[0] + g.deposit[1] - g.withdrawn[0] - g.withdrawn[1];
            bytes32 digest = _coopDigest(id, payoutA, 0);
            data = abi.encodeCall(
                manager.cooperativeClose, (id, payoutA, 0, _sign(pks[g.a], digest), _sign(pks[g.b], digest))
            );
        }
        vm.prank(a);
        (bool ok, bytes memory err) = address(manager).call(data);
        if (ok) return _violate(V_FROZEN, "a call on a finished channel was accepted");
        bytes4 expected = op <= 2
            ? IChannelManager.ChannelNotOpen.selector
            : op <= 4
                ? IChannelManager.ChannelNotClosed.selector
                : IChannelManager.ChannelAlreadySettled.selector;
        _expectSelector(err, expected, "call on a finished channel");
        summary.finishedTouchesRejected++;
    }

    /// @notice Tokens sent straight to the manager: no channel owns them.
    function donate(uint256 actorSeed, uint256 amount) external step {
        address from = actors[actorSeed % actors.length];
        if (!_canMove(from)) return _skip();
        amount = bound(amount, 1, MAX_DONATION);
        vm.prank(from);
        usdc.transfer(address(manager), amount);
        expectedBalance[from] -= amount;
        ghostDonations += amount;
        summary.donations++;
    }

    // ------------------------------------------------------------ views for the invariants

    function channelCountGhost() external view returns (uint256) {
        return channelIds.length;
    }

    function ghostOf(uint256 id) external view returns (Ghost memory) {
        return ghosts[id];
    }

    function snapshotOf(uint256 id) external view returns (IChannelManager.ChannelInfo memory) {
        return snapshots[id];
    }

    function latestProof(uint256 id, uint256 side) external view returns (uint64 nonce, uint128 transferred) {
        SignedProof[] storage history = proofs[id][side];
        SignedProof storage last = history[history.length - 1];
        return (last.nonce, last.transferred);
    }

    function callSummary() external view returns (CallSummary memory) {
        return summary;
    }

    function violations(uint256 category) external view returns (uint256 count, string memory first) {
        return (violationCounts[category], firstViolations[category]);
    }

    /// @notice Sum of `claimable` over all actors (the only possible payees).
    function totalClaimable() public view returns (uint256 sum) {
        for (uint256 i; i < actors.length; i++) {
            sum += manager.claimable(address(usdc), actors[i]);
        }
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    /// @notice The settle formula, computed here from a ChannelInfo:
    /// payoutA = clamp(depositA - withdrawnA + transferredB - transferredA, 0, holdings).
    function expectedSettlement(IChannelManager.ChannelInfo memory info)
        public
        pure
        returns (uint256 payoutA, uint256 payoutB, bool clamped)
    {
        uint256 held = uint256(info.depositA) + info.depositB - info.withdrawnA - info.withdrawnB;
        int256 netA = int256(uint256(info.depositA)) - int256(uint256(info.withdrawnA))
            + int256(uint256(info.transferredB)) - int256(uint256(info.transferredA));
        if (netA <= 0) {
            payoutA = 0;
            clamped = netA < 0;
        } else if (uint256(netA) >= held) {
            payoutA = held;
            clamped = uint256(netA) > held;
        } else {
            payoutA = uint256(netA);
        }
        payoutB = held - payoutA;
    }

    // ------------------------------------------------------------ internals

    struct Balances {
        uint256 tokenA;
        uint256 tokenB;
        uint256 claimableA;
        uint256 claimableB;
        uint256 manager;
        bool aCanReceive;
        bool bCanReceive;
    }

    function _balances(IChannelManager.ChannelInfo memory info) internal view returns (Balances memory b) {
        b.tokenA = usdc.balanceOf(info.participantA);
        b.tokenB = usdc.balanceOf(info.participantB);
        b.claimableA = manager.claimable(address(usdc), info.participantA);
        b.claimableB = manager.claimable(address(usdc), info.participantB);
        b.manager = usdc.balanceOf(address(manager));
        b.aCanReceive = _canMove(info.participantA);
        b.bCanReceive = _canMove(info.participantB);
    }

    /// @dev After a settle or cooperative close: each side received exactly its payout, paid if the
    /// token lets it through and deferred to `claimable` otherwise; nothing else changed.
    function _recordPayout(
        uint256 id,
        IChannelManager.ChannelInfo memory before,
        Balances memory pre,
        uint256 payoutA,
        uint256 payoutB
    ) internal {
        IChannelManager.ChannelInfo memory info = manager.getChannel(id);
        Balances memory post = _balances(info);
        uint256 paidA = post.tokenA - pre.tokenA;
        uint256 paidB = post.tokenB - pre.tokenB;
        _checkSide(payoutA, pre.aCanReceive, paidA, post.claimableA - pre.claimableA, info.participantA);
        _checkSide(payoutB, pre.bCanReceive, paidB, post.claimableB - pre.claimableB, info.participantB);
        if (pre.manager - post.manager != paidA + paidB) {
            _violate(V_ROUTING, "payout: manager balance moved differently");
        }

        if (info.state != IChannelManager.ChannelState.Settled) {
            _violate(V_FROZEN, "payout: state not Settled");
        }
        before.state = IChannelManager.ChannelState.Settled; // the only field settling may change
        if (keccak256(abi.encode(info)) != keccak256(abi.encode(before))) {
            _violate(V_FROZEN, "payout: settling changed more than the state");
        }
        if (manager.holdings(id) != 0) _violate(V_FROZEN, "payout: settled channel still holds tokens");

        Ghost storage g = ghosts[id];
        g.payout[0] = payoutA;
        g.payout[1] = payoutB;
        g.settled = true;
        snapshots[id] = info;
    }

    function _checkSide(uint256 payout, bool canReceive, uint256 paid, uint256 deferred, address owner)
        internal
    {
        if (paid + deferred != payout) {
            _violate(V_FORMULA, "payout: amount differs from the expected payout");
        }
        if (canReceive ? deferred != 0 : paid != 0) _violate(V_ROUTING, "payout: paid vs deferred mismatch");
        expectedBalance[owner] += paid;
        ghostDeferred += deferred;
        ghostClaimable += deferred;
        if (deferred != 0) summary.deferredPayouts++;
    }

    function _afterStep() internal {
        for (uint256 i; i < channelIds.length; i++) {
            uint256 id = channelIds[i];
            Ghost storage g = ghosts[id];
            IChannelManager.ChannelInfo memory info = manager.getChannel(id);
            if (info.nonceA < g.seenNonce[0] || info.nonceB < g.seenNonce[1]) {
                _violate(V_NONCE, "an on-chain nonce decreased");
            }
            g.seenNonce[0] = info.nonceA;
            g.seenNonce[1] = info.nonceB;
            if (g.settled && keccak256(abi.encode(info)) != keccak256(abi.encode(snapshots[id]))) {
                _violate(V_FROZEN, "a settled channel changed");
            }
        }
    }

    /// @dev A channel in `state`, starting the search at a seeded position.
    function _pick(uint256 seed, IChannelManager.ChannelState state) internal view returns (uint256, bool) {
        uint256 n = channelIds.length;
        for (uint256 i; i < n; i++) {
            uint256 id = channelIds[(seed % n + i) % n];
            if (manager.getChannel(id).state == state) return (id, true);
        }
        return (0, false);
    }

    /// @dev What `side` owns in the latest off-chain state:
    /// deposit - withdrawn + transferred by the partner - transferred by side.
    function _offchainBalance(uint256 id, uint256 side) internal view returns (int256) {
        Ghost storage g = ghosts[id];
        SignedProof[] storage mine = proofs[id][side];
        SignedProof[] storage theirs = proofs[id][1 - side];
        return int256(g.deposit[side]) - int256(g.withdrawn[side])
            + int256(uint256(theirs[theirs.length - 1].transferred))
            - int256(uint256(mine[mine.length - 1].transferred));
    }

    function _liveChannels() internal view returns (uint256 live) {
        for (uint256 i; i < channelIds.length; i++) {
            if (!ghosts[channelIds[i]].settled) live++;
        }
    }

    function _ghostHoldings(Ghost storage g) internal view returns (uint256) {
        return g.deposit[0] + g.deposit[1] - g.withdrawn[0] - g.withdrawn[1];
    }

    function _party(Ghost storage g, uint256 side) internal view returns (address) {
        return actors[side == 0 ? g.a : g.b];
    }

    /// @dev Whether the token would move tokens from or to `who` right now.
    function _canMove(address who) internal view returns (bool) {
        return !usdc.paused() && !usdc.isBlacklisted(who);
    }

    function _digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator, structHash));
    }

    function _proofDigest(uint256 id, uint64 nonce, uint128 transferred) internal view returns (bytes32) {
        return _digest(keccak256(abi.encode(balanceProofTypehash, id, nonce, transferred)));
    }

    function _coopDigest(uint256 id, uint256 payoutA, uint256 payoutB) internal view returns (bytes32) {
        IChannelManager.ChannelInfo memory info = manager.getChannel(id);
        return _digest(
            keccak256(
                abi.encode(cooperativeCloseTypehash, id, payoutA, payoutB, info.withdrawnA, info.withdrawnB)
            )
        );
    }

    function _sign(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    function _min(uint256 x, uint256 y) internal pure returns (uint256) {
        return x < y ? x : y;
    }

    function _skip() internal {
        summary.skipped++;
    }

    function _violate(uint256 category, string memory why) internal {
        violationCounts[category]++;
        if (bytes(firstViolations[category]).length == 0) firstViolations[category] = why;
    }

    function _unexpected(string memory what, bytes memory err) internal {
        _violate(V_REVERT, string.concat(what, ": unexpected revert ", vm.toString(err)));
    }

    function _expectSelector(bytes memory err, bytes4 selector, string memory what) internal {
        if (err.length < 4 || bytes4(err) != selector) {
            _violate(V_REVERT, string.concat(what, ": wrong revert ", vm.toString(err)));
        }
    }
}
