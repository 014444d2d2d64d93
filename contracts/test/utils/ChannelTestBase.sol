// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";

import {ChannelManager} from "../../src/ChannelManager.sol";
import {IChannelManager} from "../../src/interfaces/IChannelManager.sol";
import {MockUSDC} from "../../src/MockUSDC.sol";

/// @notice Shared fixture: a MockUSDC, a ChannelManager, three funded parties with known keys,
/// and signing helpers that compute EIP-712 digests independently of the contract (so a test
/// that passes also cross-checks the contract's hashing).
abstract contract ChannelTestBase is Test {
    uint32 internal constant MIN_PERIOD = 60;
    uint32 internal constant MAX_PERIOD = 30 days;
    uint32 internal constant PERIOD = 1 hours;
    uint256 internal constant USDC = 1e6;
    uint256 internal constant START_BALANCE = 1_000_000 * USDC;

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant BALANCE_PROOF_TYPEHASH =
        keccak256("BalanceProof(uint256 channelId,uint64 nonce,uint128 transferred)");
    bytes32 internal constant WITHDRAW_TYPEHASH =
        keccak256("Withdraw(uint256 channelId,address participant,uint96 totalWithdrawn,uint64 expiry)");
    bytes32 internal constant COOPERATIVE_CLOSE_TYPEHASH = keccak256(
        "CooperativeClose(uint256 channelId,uint256 payoutA,uint256 payoutB,uint96 withdrawnA,uint96 withdrawnB)"
    );
    bytes32 internal constant OPEN_WITH_PERMIT_TYPEHASH = keccak256(
        "OpenWithPermit(address token,address partner,uint96 deposit,uint32 challengePeriod,uint256 permitNonce)"
    );
    bytes32 internal constant OPEN_AUTHORIZATION_TYPEHASH =
        keccak256("OpenAuthorization(address partner,uint32 challengePeriod,bytes32 salt)");
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    MockUSDC internal usdc;
    ChannelManager internal manager;

    uint256 internal alicePk = 0xA11CE;
    uint256 internal bobPk = 0xB0B;
    uint256 internal carolPk = 0xCA401;
    address internal alice;
    address internal bob;
    address internal carol;

    function setUp() public virtual {
        alice = vm.addr(alicePk);
        bob = vm.addr(bobPk);
        carol = vm.addr(carolPk);
        vm.label(alice, "alice");
        vm.label(bob, "bob");
        vm.label(carol, "carol");

        usdc = new MockUSDC(address(this), "USD Coin", "2");
        usdc.configureMinter(address(this), type(uint256).max);
        manager = new ChannelManager(MIN_PERIOD, MAX_PERIOD);
        vm.label(address(usdc), "usdc");
        vm.label(address(manager), "manager");

        address[3] memory people = [alice, bob, carol];
        for (uint256 i; i < people.length; i++) {
            usdc.mint(people[i], START_BALANCE);
            vm.prank(people[i]);
            usdc.approve(address(manager), type(uint256).max);
        }
    }

    // ------------------------------------------------------------ channel helpers

    /// @dev alice opens to bob with `depositA`; bob tops up `depositB` if non-zero.
    function _openFunded(uint256 depositA, uint256 depositB) internal returns (uint256 id) {
        vm.prank(alice);
        id = manager.open(address(usdc), bob, depositA, PERIOD);
        if (depositB != 0) {
            vm.prank(bob);
            manager.topUp(id, bob, depositB);
        }
    }

    function _channel(uint256 id) internal view returns (IChannelManager.ChannelInfo memory) {
        return manager.getChannel(id);
    }

    // ------------------------------------------------------------ EIP-712, computed here

    function _domainSeparator(address verifyingContract, uint256 chainId) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("Farthing"), keccak256("1"), chainId, verifyingContract)
        );
    }

    function _digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(
            abi.encodePacked("\x19\x01", _domainSeparator(address(manager), block.chainid), structHash)
        );
    }

    function _sign(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    function _proofDigest(uint256 id, uint64 nonce, uint128 transferred) internal view returns (bytes32) {
        return _digest(keccak256(abi.encode(BALANCE_PROOF_TYPEHASH, id, nonce, transferred)));
    }

    function _signProof(uint256 pk, uint256 id, uint64 nonce, uint128 transferred)
        internal
        view
        returns (bytes memory)
    {
        return _sign(pk, _proofDigest(id, nonce, transferred));
    }

    function _signWithdraw(uint256 pk, uint256 id, address participant, uint96 total, uint64 expiry)
        internal
        view
        returns (bytes memory)
    {
        return _sign(pk, _digest(keccak256(abi.encode(WITHDRAW_TYPEHASH, id, participant, total, expiry))));
    }

    /// @dev Signs a cooperative close of channel `id` as it stands now (its withdrawal totals
    /// are part of the message).
    function _signCoopClose(uint256 pk, uint256 id, uint256 payoutA, uint256 payoutB)
        internal
        view
        returns (bytes memory)
    {
        (uint96 withdrawnA, uint96 withdrawnB) = _withdrawn(id);
        return _sign(
            pk,
            _digest(
                keccak256(
                    abi.encode(COOPERATIVE_CLOSE_TYPEHASH, id, payoutA, payoutB, withdrawnA, withdrawnB)
                )
            )
        );
    }

    /// @dev The channel's withdrawal totals, read from storage with vm.load rather than through a
    /// call, so signing helpers can sit between vm.expectRevert and the call it expects.
    /// Layout (forge inspect ChannelManager storageLayout): `_channels` is slot 3, and
    /// [withdrawnA | withdrawnB] is the 4th slot of a Channel. `test_withdrawnSlot_matchesView`
    /// in ChannelManager.signatures.t.sol keeps this honest.
    function _withdrawn(uint256 id) internal view returns (uint96 withdrawnA, uint96 withdrawnB) {
        uint256 word = uint256(vm.load(address(manager), bytes32(uint256(keccak256(abi.encode(id, 3))) + 3)));
        withdrawnA = uint96(word);
        withdrawnB = uint96(word >> 96);
    }

    /// @dev Both parties sign and anyone submits a cooperative close.
    function _coopClose(uint256 id, uint256 payoutA, uint256 payoutB) internal {
        manager.cooperativeClose(
            id,
            payoutA,
            payoutB,
            _signCoopClose(alicePk, id, payoutA, payoutB),
            _signCoopClose(bobPk, id, payoutA, payoutB)
        );
    }

    /// @dev Both parties sign and anyone submits a withdrawal for `participant`.
    function _withdraw(uint256 id, address participant, uint96 total) internal {
        uint64 expiry = uint64(block.timestamp + 1 hours);
        manager.withdraw(
            id,
            participant,
            total,
            expiry,
            _signWithdraw(alicePk, id, participant, total, expiry),
            _signWithdraw(bobPk, id, participant, total, expiry)
        );
    }

    /// @dev The same signature with s replaced by n - s and v flipped: valid on plain ecrecover,
    /// refused by the contract (and by the node).
    function _highS(bytes memory sig) internal pure returns (bytes memory) {
        (bytes32 r, bytes32 s, uint8 v) = _split(sig);
        return abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function _split(bytes memory sig) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
    }

    // ------------------------------------------------------------ token-side signatures

    function _signPermit(uint256 pk, address spender, uint256 value, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        address owner = vm.addr(pk);
        bytes32 structHash = keccak256(
            abi.encode(usdc.PERMIT_TYPEHASH(), owner, spender, value, usdc.nonces(owner), deadline)
        );
        return vm.sign(pk, keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
    }

    function _signReceiveAuthorization(
        uint256 pk,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash = keccak256(
            abi.encode(
                usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(),
                vm.addr(pk),
                to,
                value,
                validAfter,
                validBefore,
                nonce
            )
        );
        return vm.sign(pk, keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
    }

    function _openAuthorizationNonce(address partner, uint32 period, bytes32 salt)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(OPEN_AUTHORIZATION_TYPEHASH, partner, period, salt));
    }
}
