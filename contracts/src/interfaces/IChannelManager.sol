// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title The on-chain half of a Farthing payment channel
/// @notice Types, events and errors of `ChannelManager`. A node follows a channel from the events
/// alone: each carries the values that changed, so no extra call is needed.
interface IChannelManager {
    /// @notice Life of a channel. Ids are never reused, so `None` means "no such channel".
    enum ChannelState {
        None,
        Open,
        Closed,
        Settled
    }

    /// @notice Everything the contract knows about one channel.
    /// @dev `nonceA`/`transferredA` is the latest balance proof *signed by A* that reached the
    /// chain (zero until a close or an update records one); the same for B.
    struct ChannelInfo {
        ChannelState state;
        address token;
        address participantA;
        address participantB;
        uint96 depositA;
        uint96 depositB;
        uint96 withdrawnA;
        uint96 withdrawnB;
        uint32 challengePeriod;
        /// @dev Unix time from which `settle` is allowed; updates are accepted strictly before it.
        uint40 settleAfter;
        /// @dev Who called `close` (zero if nobody did).
        address closer;
        uint64 nonceA;
        uint128 transferredA;
        uint64 nonceB;
        uint128 transferredB;
    }

    // ---------------------------------------------------------------- events

    /// @notice A channel was opened and (possibly) funded by A.
    event ChannelOpened(
        uint256 indexed channelId,
        address indexed participantA,
        address indexed participantB,
        address token,
        uint256 depositA,
        uint32 challengePeriod
    );

    /// @notice `participant`'s total deposit rose to `totalDeposit` (by `amount`).
    event Deposited(
        uint256 indexed channelId, address indexed participant, uint256 totalDeposit, uint256 amount
    );

    /// @notice A cooperative withdrawal paid `amount` to `participant` while the channel stays open.
    event Withdrawn(
        uint256 indexed channelId, address indexed participant, uint256 totalWithdrawn, uint256 amount
    );

    /// @notice `closer` closed unilaterally with the partner's proof; the challenge period runs
    /// until `settleAfter`.
    event ChannelClosed(
        uint256 indexed channelId,
        address indexed closer,
        uint40 settleAfter,
        uint64 partnerNonce,
        uint128 partnerTransferred
    );

    /// @notice A newer balance proof signed by `participant` was recorded during the challenge period.
    event BalanceProofUpdated(
        uint256 indexed channelId, address indexed participant, uint64 nonce, uint128 transferred
    );

    /// @notice The channel paid out and will never change again. A payout the token refused is
    /// announced by `PayoutDeferred` and stays claimable.
    event ChannelSettled(uint256 indexed channelId, uint256 payoutA, uint256 payoutB, bool cooperative);

    /// @notice The token refused to move `amount` to `owner` (paused, blacklisted...); it can be
    /// claimed later with `claim`.
    event PayoutDeferred(
        uint256 indexed channelId, address indexed token, address indexed owner, uint256 amount
    );

    /// @notice A deferred payout was claimed.
    event Claimed(address indexed token, address indexed owner, uint256 amount);

    // ---------------------------------------------------------------- errors

    /// @notice No channel has this id.
    error UnknownChannel(uint256 channelId);
    /// @notice The call needs an open channel.
    error ChannelNotOpen(uint256 channelId, ChannelState state);
    /// @notice The call needs a unilaterally closed channel.
    error ChannelNotClosed(uint256 channelId, ChannelState state);
    /// @notice The channel is settled; nothing about it can change any more.
    error ChannelAlreadySettled(uint256 channelId);
    /// @notice The caller (or the named address) is not a participant of the channel.
    error NotParticipant(uint256 channelId, address account);
    /// @notice The partner address is zero or the opener itself.
    error InvalidPartner(address partner);
    /// @notice The token address holds no contract.
    error InvalidToken(address token);
    /// @notice The challenge period is outside the bounds fixed at deployment.
    error ChallengePeriodOutOfRange(uint256 challengePeriod, uint256 min, uint256 max);
    /// @notice An amount does not fit the type the contract stores it in.
    error AmountTooLarge(uint256 amount, uint256 max);
    /// @notice A total deposit or total withdrawal must rise.
    error TotalNotIncreased(uint256 current, uint256 requested);
    /// @notice The token moved a different amount than asked (fee-on-transfer and the like are refused).
    error TransferAmountMismatch(uint256 expected, uint256 received);
    /// @notice A signature is not 65 bytes, has a high s, a v other than 27/28, or recovers to zero.
    error InvalidSignature();
    /// @notice A signature is valid but by someone other than who must sign.
    error SignerMismatch(address expected, address recovered);
    /// @notice A balance proof's signer is not a participant of the channel.
    error SignerNotParticipant(address recovered);
    /// @notice A balance proof with nonce zero must carry a zero amount.
    error EmptyProofWithAmount(uint256 transferred);
    /// @notice The proof transfers less than the recorded one (or as much with no higher nonce).
    error StaleProof(uint64 recordedNonce, uint128 recordedTransferred, uint64 nonce, uint128 transferred);
    /// @notice The challenge period ended at `settleAfter`; no more updates.
    error ChallengePeriodOver(uint256 channelId, uint40 settleAfter);
    /// @notice The challenge period runs until `settleAfter`; settle then.
    error ChallengePeriodActive(uint256 channelId, uint40 settleAfter);
    /// @notice A co-signed withdrawal is past its expiry.
    error WithdrawExpired(uint256 expiry, uint256 timestamp);
    /// @notice More than the channel holds was asked for.
    error InsufficientHoldings(uint256 holdings, uint256 requested);
    /// @notice Cooperative payouts must add up to exactly what the channel holds.
    error PayoutsMismatch(uint256 holdings, uint256 payoutSum);
    /// @notice Nothing is claimable for this owner and token.
    error NothingToClaim(address token, address owner);
    /// @notice Deployment bounds are inconsistent.
    error InvalidChallengeBounds(uint256 min, uint256 max);
}
