// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IChannelManager} from "./interfaces/IChannelManager.sol";
import {IERC3009} from "./interfaces/IERC3009.sol";

/// @title Farthing ChannelManager: one contract for all two-party ERC-20 payment channels
/// @notice Lifecycle (see shared/design/PROTOCOL.md):
///   open (funded in the same transaction; gasless for the payer through EIP-3009 or EIP-2612)
///   -> deposit / co-signed withdraw while open
///   -> co-signed cooperative close (one transaction, also accepted during a dispute)
///   or unilateral close -> balance-proof updates during the challenge period -> settle
///   -> payouts that never revert the settle, with `claim` for what a token refused to move.
/// Off-chain, each participant P signs cumulative `BalanceProof{channelId, nonce, transferred}`
/// messages (EIP-712, this contract's domain). At settle
///   payoutA = depositA - withdrawnA + transferredB - transferredA, clamped to [0, holdings],
///   payoutB = holdings - payoutA.
/// @dev Amounts: deposits and withdrawals are stored as uint96 (7.9e28 base units), cumulative
/// transfers as uint128, nonces as uint64. A channel's storage is six packed slots.
contract ChannelManager is IChannelManager, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    // ------------------------------------------------------------ constants

    /// @notice Signed by P for each payment P makes: everything P has paid so far in the channel.
    bytes32 public constant BALANCE_PROOF_TYPEHASH =
        keccak256("BalanceProof(uint256 channelId,uint64 nonce,uint128 transferred)");
    /// @notice Signed by both participants to let `participant` withdraw up to `totalWithdrawn`.
    bytes32 public constant WITHDRAW_TYPEHASH =
        keccak256("Withdraw(uint256 channelId,address participant,uint96 totalWithdrawn,uint64 expiry)");
    /// @notice Signed by both participants to close with these final payouts. It names the
    /// withdrawal totals it was signed at: with payouts summing to the holdings, that pins the
    /// deposits too, so a close signed earlier can never execute on a channel that moved on.
    bytes32 public constant COOPERATIVE_CLOSE_TYPEHASH = keccak256(
        "CooperativeClose(uint256 channelId,uint256 payoutA,uint256 payoutB,uint96 withdrawnA,uint96 withdrawnB)"
    );
    /// @notice The EIP-3009 authorization nonce of a gasless open is this struct's hash, so the
    /// payer's one signature also fixes the partner and the challenge period.
    bytes32 public constant OPEN_AUTHORIZATION_TYPEHASH =
        keccak256("OpenAuthorization(address partner,uint32 challengePeriod,bytes32 salt)");
    /// @notice Signed by the funder when someone else submits its EIP-2612 permit to open a
    /// channel; bound to the permit's nonce, so it can be used once.
    bytes32 public constant OPEN_WITH_PERMIT_TYPEHASH = keccak256(
        "OpenWithPermit(address token,address partner,uint96 deposit,uint32 challengePeriod,uint256 permitNonce)"
    );

    uint256 private constant MAX_DEPOSIT = type(uint96).max;
    uint256 private constant SECP256K1N_HALF =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    // ------------------------------------------------------------ storage

    /// @dev One latest balance proof as recorded on-chain.
    struct Proof {
        uint64 nonce;
        uint128 transferred;
    }

    /// @dev Six slots: [A|depositA] [B|depositB] [token|period|state|settleAfter|closer]
    /// [withdrawnA|withdrawnB] [proof signed by A] [proof signed by B].
    struct Channel {
        address a;
        uint96 depositA;
        address b;
        uint96 depositB;
        address token;
        uint32 challengePeriod;
        ChannelState state;
        uint40 settleAfter;
        /// @dev 0 = none, 1 = A closed, 2 = B closed.
        uint8 closer;
        uint96 withdrawnA;
        uint96 withdrawnB;
        Proof proofA;
        Proof proofB;
    }

    /// @notice Shortest challenge period a channel may choose, in seconds (fixed at deployment).
    uint32 public immutable minChallengePeriod;
    /// @notice Longest challenge period a channel may choose, in seconds (fixed at deployment).
    uint32 public immutable maxChallengePeriod;

    /// @notice Number of channels ever opened; the next channel's id is `channelCount + 1`.
    uint256 public channelCount;

    mapping(uint256 channelId => Channel) private _channels;

    /// @notice Payouts a token refused to move at settle time, waiting for `claim`.
    mapping(address token => mapping(address owner => uint256 amount)) public claimable;

    constructor(uint32 minChallengePeriod_, uint32 maxChallengePeriod_) EIP712("Farthing", "1") {
        if (minChallengePeriod_ == 0 || minChallengePeriod_ > maxChallengePeriod_) {
            revert InvalidChallengeBounds(minChallengePeriod_, maxChallengePeriod_);
        }
        minChallengePeriod = minChallengePeriod_;
        maxChallengePeriod = maxChallengePeriod_;
    }

    // ------------------------------------------------------------ open and fund

    /// @notice Open a channel to `partner` and fund it with `deposit` of `token` from the caller
    /// (who must have approved this contract). `deposit` may be zero.
    function open(address token, address partner, uint256 deposit, uint32 challengePeriod)
        external
        nonReentrant
        returns (uint256 channelId)
    {
        channelId = _create(token, msg.sender, partner, deposit, challengePeriod);
        if (deposit != 0) _pull(token, msg.sender, deposit);
    }

    /// @notice Open and fund in one transaction from an EIP-2612 permit instead of an approve.
    /// The caller may be the funder itself (`funderSignature` then unused; a permit someone
    /// front-ran is tolerated if the allowance is there) or anyone relaying for it: then
    /// `funderSignature` is the funder's `OpenWithPermit` signature, which names the permit's
    /// nonce and so fixes partner, amount and period for this one permit, which must succeed.
    function openWithPermit(
        address token,
        address funder,
        address partner,
        uint256 deposit,
        uint32 challengePeriod,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s,
        bytes calldata funderSignature
    ) external nonReentrant returns (uint256 channelId) {
        channelId = _create(token, funder, partner, deposit, challengePeriod);
        if (msg.sender == funder) {
            _tryPermit(token, funder, deposit, permitDeadline, v, r, s);
        } else {
            // The funder's signature names the permit's nonce and is spent by the permit
            // itself, so the permit must go through here: a standing allowance must not let a
            // relayer replay the signature.
            _requireOpenWithPermitSigner(token, funder, partner, deposit, challengePeriod, funderSignature);
            IERC20Permit(token).permit(funder, address(this), deposit, permitDeadline, v, r, s);
        }
        if (deposit != 0) _pull(token, funder, deposit);
    }

    /// @notice Open and fund gaslessly for the funder through EIP-3009 `receiveWithAuthorization`.
    /// Anyone may submit. The authorization's nonce must be
    /// `openAuthorizationNonce(partner, challengePeriod, salt)`, so the funder's single signature
    /// fixes the partner and the period too.
    function openWithAuthorization(
        address token,
        address funder,
        address partner,
        uint256 deposit,
        uint32 challengePeriod,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 salt,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 channelId) {
        channelId = _create(token, funder, partner, deposit, challengePeriod);
        bytes32 nonce = openAuthorizationNonce(partner, challengePeriod, salt);
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC3009(token)
            .receiveWithAuthorization(funder, address(this), deposit, validAfter, validBefore, nonce, v, r, s);
        _checkReceived(token, before, deposit);
    }

    /// @notice Raise `participant`'s total deposit to `totalDeposit`, paid by the caller, who
    /// must be a participant (an outsider's top-up could otherwise change the holdings under a
    /// co-signed cooperative close and make it revert). Idempotent: the same call twice fails
    /// the second time instead of paying twice.
    function topUp(uint256 channelId, address participant, uint256 totalDeposit) external nonReentrant {
        Channel storage c = _channels[channelId];
        _requireOpen(channelId, c);
        if (msg.sender != c.a && msg.sender != c.b) revert NotParticipant(channelId, msg.sender);
        if (totalDeposit > MAX_DEPOSIT) revert AmountTooLarge(totalDeposit, MAX_DEPOSIT);
        uint256 current;
        if (participant == c.a) {
            current = c.depositA;
            if (totalDeposit <= current) revert TotalNotIncreased(current, totalDeposit);
            c.depositA = uint96(totalDeposit);
        } else if (participant == c.b) {
            current = c.depositB;
            if (totalDeposit <= current) revert TotalNotIncreased(current, totalDeposit);
            c.depositB = uint96(totalDeposit);
        } else {
            revert NotParticipant(channelId, participant);
        }
        uint256 amount = totalDeposit - current;
        _pull(c.token, msg.sender, amount);
        emit Deposited(channelId, participant, totalDeposit, amount);
    }

    // ------------------------------------------------------------ while open

    /// @notice Pay `participant` up to a new `totalWithdrawn` while the channel stays open.
    /// Both participants sign `Withdraw{channelId, participant, totalWithdrawn, expiry}`; anyone submits.
    function withdraw(
        uint256 channelId,
        address participant,
        uint256 totalWithdrawn,
        uint256 expiry,
        bytes calldata signatureA,
        bytes calldata signatureB
    ) external nonReentrant {
        Channel storage c = _channels[channelId];
        _requireOpen(channelId, c);
        if (block.timestamp > expiry) revert WithdrawExpired(expiry, block.timestamp);
        if (totalWithdrawn > MAX_DEPOSIT) revert AmountTooLarge(totalWithdrawn, MAX_DEPOSIT);
        if (expiry > type(uint64).max) revert AmountTooLarge(expiry, type(uint64).max);

        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(WITHDRAW_TYPEHASH, channelId, participant, totalWithdrawn, expiry))
        );
        _requireSigner(digest, signatureA, c.a);
        _requireSigner(digest, signatureB, c.b);

        uint256 amount = _recordWithdrawal(channelId, c, participant, totalWithdrawn);
        IERC20(c.token).safeTransfer(participant, amount);
        emit Withdrawn(channelId, participant, totalWithdrawn, amount);
    }

    // ------------------------------------------------------------ closing

    /// @notice Close and pay out in one transaction with payouts both participants signed
    /// (`CooperativeClose{channelId, payoutA, payoutB}`). Accepted while open and also during a
    /// unilateral close's challenge period, so a stale unilateral close cannot front-run it.
    function cooperativeClose(
        uint256 channelId,
        uint256 payoutA,
        uint256 payoutB,
        bytes calldata signatureA,
        bytes calldata signatureB
    ) external nonReentrant {
        Channel storage c = _channels[channelId];
        ChannelState state = c.state;
        if (state == ChannelState.None) revert UnknownChannel(channelId);
        if (state == ChannelState.Settled) revert ChannelAlreadySettled(channelId);
        uint256 held = _holdings(c);
        if (payoutA + payoutB != held) revert PayoutsMismatch(held, payoutA + payoutB);

        bytes32 digest = cooperativeCloseDigest(channelId, payoutA, payoutB);
        _requireSigner(digest, signatureA, c.a);
        _requireSigner(digest, signatureB, c.b);

        c.state = ChannelState.Settled;
        _payOut(channelId, c, payoutA, payoutB, true);
    }

    /// @notice Close unilaterally, submitting the partner's latest balance proof (`nonce` zero and
    /// no signature if the partner never paid). The challenge period starts now.
    function close(uint256 channelId, uint64 nonce, uint128 transferred, bytes calldata partnerSignature)
        external
        nonReentrant
    {
        Channel storage c = _channels[channelId];
        _requireOpen(channelId, c);
        bool callerIsA = msg.sender == c.a;
        if (!callerIsA && msg.sender != c.b) revert NotParticipant(channelId, msg.sender);

        if (nonce != 0) {
            _requireSigner(
                balanceProofDigest(channelId, nonce, transferred), partnerSignature, callerIsA ? c.b : c.a
            );
            Proof storage partnerProof = callerIsA ? c.proofB : c.proofA;
            partnerProof.nonce = nonce;
            partnerProof.transferred = transferred;
        } else if (transferred != 0) {
            revert EmptyProofWithAmount(transferred);
        }

        uint40 settleAfter = uint40(block.timestamp) + c.challengePeriod;
        c.state = ChannelState.Closed;
        c.settleAfter = settleAfter;
        c.closer = callerIsA ? 1 : 2;
        emit ChannelClosed(channelId, msg.sender, settleAfter, nonce, transferred);
    }

    /// @notice During the challenge period, record a newer balance proof of either participant.
    /// Anyone holding the signed proof may submit it (the partner, or a watchtower): the signer
    /// is recovered and the proof replaces the recorded one only if it transfers more (or as
    /// much, with a higher nonce).
    /// @dev Proofs are cumulative, so for an honest signer "more transferred" and "higher nonce"
    /// order proofs alike. Ordering by amount is what makes the open submission safe: a payer who
    /// signs its own proof with a huge nonce and a small amount cannot erase what it paid, nor
    /// block the real proof; it can only commit itself to pay more.
    function updateProof(uint256 channelId, uint64 nonce, uint128 transferred, bytes calldata signature)
        external
        nonReentrant
    {
        Channel storage c = _channels[channelId];
        ChannelState state = c.state;
        if (state != ChannelState.Closed) {
            if (state == ChannelState.None) revert UnknownChannel(channelId);
            revert ChannelNotClosed(channelId, state);
        }
        uint40 settleAfter = c.settleAfter;
        if (block.timestamp >= settleAfter) revert ChallengePeriodOver(channelId, settleAfter);

        address signer = _recover(balanceProofDigest(channelId, nonce, transferred), signature);
        Proof storage proof;
        if (signer == c.a) proof = c.proofA;
        else if (signer == c.b) proof = c.proofB;
        else revert SignerNotParticipant(signer);

        uint64 recordedNonce = proof.nonce;
        uint128 recordedTransferred = proof.transferred;
        if (
            transferred < recordedTransferred
                || (transferred == recordedTransferred && nonce <= recordedNonce)
        ) {
            revert StaleProof(recordedNonce, recordedTransferred, nonce, transferred);
        }
        if (nonce < recordedNonce) nonce = recordedNonce;
        proof.nonce = nonce;
        proof.transferred = transferred;
        emit BalanceProofUpdated(channelId, signer, nonce, transferred);
    }

    /// @notice After the challenge period, pay both participants from the recorded proofs. Anyone
    /// may call. A payout the token refuses is kept claimable; the settle itself never reverts on it.
    function settle(uint256 channelId) external nonReentrant {
        Channel storage c = _channels[channelId];
        ChannelState state = c.state;
        if (state != ChannelState.Closed) {
            if (state == ChannelState.None) revert UnknownChannel(channelId);
            revert ChannelNotClosed(channelId, state);
        }
        uint40 settleAfter = c.settleAfter;
        if (block.timestamp < settleAfter) revert ChallengePeriodActive(channelId, settleAfter);

        uint256 held = _holdings(c);
        // A's net position: what A put in and kept, plus what B paid A, minus what A paid B.
        int256 netA = int256(uint256(c.depositA)) - int256(uint256(c.withdrawnA))
            + int256(uint256(c.proofB.transferred)) - int256(uint256(c.proofA.transferred));
        uint256 payoutA;
        if (netA <= 0) payoutA = 0;
        else if (uint256(netA) >= held) payoutA = held;
        else payoutA = uint256(netA);

        c.state = ChannelState.Settled;
        _payOut(channelId, c, payoutA, held - payoutA, false);
    }

    /// @notice Pay `owner` what a token refused to move at settle time. Anyone may call; the
    /// tokens always go to `owner`. Reverts (keeping the claim) if the token still refuses.
    function claim(address token, address owner) external nonReentrant {
        uint256 amount = claimable[token][owner];
        if (amount == 0) revert NothingToClaim(token, owner);
        claimable[token][owner] = 0;
        IERC20(token).safeTransfer(owner, amount);
        emit Claimed(token, owner, amount);
    }

    // ------------------------------------------------------------ views

    /// @notice The full on-chain state of a channel (all zero for an unknown id).
    function getChannel(uint256 channelId) external view returns (ChannelInfo memory info) {
        Channel storage c = _channels[channelId];
        info = ChannelInfo({
            state: c.state,
            token: c.token,
            participantA: c.a,
            participantB: c.b,
            depositA: c.depositA,
            depositB: c.depositB,
            withdrawnA: c.withdrawnA,
            withdrawnB: c.withdrawnB,
            challengePeriod: c.challengePeriod,
            settleAfter: c.settleAfter,
            closer: c.closer == 1 ? c.a : c.closer == 2 ? c.b : address(0),
            nonceA: c.proofA.nonce,
            transferredA: c.proofA.transferred,
            nonceB: c.proofB.nonce,
            transferredB: c.proofB.transferred
        });
    }

    /// @notice What the channel holds now: deposits minus withdrawals (zero once settled).
    function holdings(uint256 channelId) external view returns (uint256) {
        Channel storage c = _channels[channelId];
        if (c.state == ChannelState.Settled) return 0;
        return _holdings(c);
    }

    /// @notice The EIP-712 domain separator (name "Farthing", version "1", chain id, this address).
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice The digest a participant signs for a balance proof (nodes check their own hashing
    /// against it).
    function balanceProofDigest(uint256 channelId, uint64 nonce, uint128 transferred)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(BALANCE_PROOF_TYPEHASH, channelId, nonce, transferred)));
    }

    /// @notice The digest both participants sign for a cooperative withdrawal.
    function withdrawDigest(uint256 channelId, address participant, uint96 totalWithdrawn, uint64 expiry)
        external
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(abi.encode(WITHDRAW_TYPEHASH, channelId, participant, totalWithdrawn, expiry))
        );
    }

    /// @notice The digest both participants sign for a cooperative close of the channel as it
    /// stands now (its current withdrawal totals are part of the message).
    function cooperativeCloseDigest(uint256 channelId, uint256 payoutA, uint256 payoutB)
        public
        view
        returns (bytes32)
    {
        Channel storage c = _channels[channelId];
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    COOPERATIVE_CLOSE_TYPEHASH, channelId, payoutA, payoutB, c.withdrawnA, c.withdrawnB
                )
            )
        );
    }

    /// @notice The digest a funder signs so that someone else may submit its permit to open.
    function openWithPermitDigest(
        address token,
        address partner,
        uint96 deposit,
        uint32 challengePeriod,
        uint256 permitNonce
    ) external view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(OPEN_WITH_PERMIT_TYPEHASH, token, partner, deposit, challengePeriod, permitNonce)
            )
        );
    }

    /// @notice The EIP-3009 nonce a funder signs for `openWithAuthorization`.
    function openAuthorizationNonce(address partner, uint32 challengePeriod, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(OPEN_AUTHORIZATION_TYPEHASH, partner, challengePeriod, salt));
    }

    // ------------------------------------------------------------ internals

    function _create(address token, address funder, address partner, uint256 deposit, uint32 challengePeriod)
        private
        returns (uint256 channelId)
    {
        if (partner == address(0) || partner == funder) revert InvalidPartner(partner);
        if (funder == address(0)) revert InvalidPartner(funder);
        if (token.code.length == 0) revert InvalidToken(token);
        if (deposit > MAX_DEPOSIT) revert AmountTooLarge(deposit, MAX_DEPOSIT);
        if (challengePeriod < minChallengePeriod || challengePeriod > maxChallengePeriod) {
            revert ChallengePeriodOutOfRange(challengePeriod, minChallengePeriod, maxChallengePeriod);
        }
        channelId = ++channelCount;
        Channel storage c = _channels[channelId];
        c.a = funder;
        c.depositA = uint96(deposit);
        c.b = partner;
        c.token = token;
        c.challengePeriod = challengePeriod;
        c.state = ChannelState.Open;
        emit ChannelOpened(channelId, funder, partner, token, deposit, challengePeriod);
    }

    /// @dev A relayed permit open needs the funder's `OpenWithPermit` signature over the permit's
    /// current nonce: once the permit is used the nonce moves on and the signature is spent.
    function _requireOpenWithPermitSigner(
        address token,
        address funder,
        address partner,
        uint256 deposit,
        uint32 challengePeriod,
        bytes calldata funderSignature
    ) private view {
        if (deposit > MAX_DEPOSIT) revert AmountTooLarge(deposit, MAX_DEPOSIT);
        uint256 permitNonce = IERC20Permit(token).nonces(funder);
        bytes32 digest = _hashTypedDataV4(
            keccak256(
                abi.encode(OPEN_WITH_PERMIT_TYPEHASH, token, partner, deposit, challengePeriod, permitNonce)
            )
        );
        _requireSigner(digest, funderSignature, funder);
    }

    /// @dev For the funder's own open: a permit someone already submitted (front-running) is fine,
    /// the pull then checks the allowance.
    function _tryPermit(
        address token,
        address funder,
        uint256 value,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) private {
        try IERC20Permit(token).permit(funder, address(this), value, deadline, v, r, s) {} catch {}
    }

    /// @dev Take exactly `amount` from `from`; tokens that deliver less are refused.
    function _pull(address token, address from, uint256 amount) private {
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(from, address(this), amount);
        _checkReceived(token, before, amount);
    }

    function _checkReceived(address token, uint256 before, uint256 expected) private view {
        uint256 received = IERC20(token).balanceOf(address(this)) - before;
        if (received != expected) revert TransferAmountMismatch(expected, received);
    }

    /// @dev Pay both sides without reverting: what the token refuses becomes claimable.
    function _payOut(uint256 channelId, Channel storage c, uint256 payoutA, uint256 payoutB, bool cooperative)
        private
    {
        address token = c.token;
        _payOrDefer(channelId, token, c.a, payoutA);
        _payOrDefer(channelId, token, c.b, payoutB);
        emit ChannelSettled(channelId, payoutA, payoutB, cooperative);
    }

    function _payOrDefer(uint256 channelId, address token, address to, uint256 amount) private {
        if (amount == 0) return;
        if (!IERC20(token).trySafeTransfer(to, amount)) {
            claimable[token][to] += amount;
            emit PayoutDeferred(channelId, token, to, amount);
        }
    }

    /// @dev Raise `participant`'s total withdrawn to `totalWithdrawn`; returns the amount to pay.
    function _recordWithdrawal(
        uint256 channelId,
        Channel storage c,
        address participant,
        uint256 totalWithdrawn
    ) private returns (uint256 amount) {
        bool isA = participant == c.a;
        if (!isA && participant != c.b) revert NotParticipant(channelId, participant);
        uint256 current = isA ? c.withdrawnA : c.withdrawnB;
        if (totalWithdrawn <= current) revert TotalNotIncreased(current, totalWithdrawn);
        amount = totalWithdrawn - current;
        uint256 held = _holdings(c);
        if (amount > held) revert InsufficientHoldings(held, amount);
        if (isA) c.withdrawnA = uint96(totalWithdrawn);
        else c.withdrawnB = uint96(totalWithdrawn);
    }

    function _holdings(Channel storage c) private view returns (uint256) {
        return uint256(c.depositA) + c.depositB - c.withdrawnA - c.withdrawnB;
    }

    function _requireOpen(uint256 channelId, Channel storage c) private view {
        ChannelState state = c.state;
        if (state != ChannelState.Open) {
            if (state == ChannelState.None) revert UnknownChannel(channelId);
            revert ChannelNotOpen(channelId, state);
        }
    }

    function _requireSigner(bytes32 digest, bytes calldata signature, address expected) private pure {
        address recovered = _recover(digest, signature);
        if (recovered != expected) revert SignerMismatch(expected, recovered);
    }

    /// @dev The node applies the same rules: 65 bytes r|s|v, low s, v in {27, 28}, non-zero signer.
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address signer) {
        if (signature.length != 65) revert InvalidSignature();
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > SECP256K1N_HALF || (v != 27 && v != 28)) revert InvalidSignature();
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert InvalidSignature();
    }
}
