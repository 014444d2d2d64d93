// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ChannelManager} from "../src/ChannelManager.sol";
import {IChannelManager} from "../src/interfaces/IChannelManager.sol";
import {ChannelTestBase} from "./utils/ChannelTestBase.sol";

/// @notice RELIABILITY P1 (domain separation) and P2 (canonical signatures) on the contract side.
/// Every signed message goes through a "slot": the message and, for co-signed messages, whose
/// signature it is. Each test feeds a refused signature to every slot it applies to and expects
/// the exact custom error; `test_validSignaturesAccepted` shows the same calls succeed with the
/// right signature, so the refusals are not vacuous.
contract ChannelManagerSignaturesTest is ChannelTestBase {
    /// @dev Where a signature is submitted.
    enum Slot {
        Close, // bob's balance proof, submitted by alice in `close`
        UpdateProof, // alice's balance proof, submitted by a watchtower (carol) in `updateProof`
        WithdrawA, // alice's `Withdraw` signature
        WithdrawB, // bob's `Withdraw` signature
        CoopCloseA, // alice's `CooperativeClose` signature
        CoopCloseB, // bob's `CooperativeClose` signature
        OpenWithPermit // alice's `OpenWithPermit` signature, relayed by carol
    }

    uint256 internal constant SLOTS = 7;
    uint256 internal constant SECP256K1N_HALF =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;
    uint256 internal constant OTHER_CHAIN_ID = 10;

    uint96 internal constant DEPOSIT_A = uint96(100 * USDC);
    uint96 internal constant DEPOSIT_B = uint96(50 * USDC);
    uint64 internal constant NONCE = 3;
    uint128 internal constant TRANSFERRED = uint128(20 * USDC);
    uint96 internal constant WITHDRAW_TOTAL = uint96(10 * USDC);
    uint96 internal constant PAYOUT_A = uint96(110 * USDC);
    uint96 internal constant PAYOUT_B = uint96(40 * USDC);
    uint96 internal constant PERMIT_DEPOSIT = uint96(25 * USDC);

    /// @dev An open channel (alice 100, bob 50) and one bob closed (challenge period running).
    uint256 internal openId;
    uint256 internal closedId;
    uint64 internal expiry;

    /// @dev alice's USDC permit for the relayed open, and the permit nonce it uses.
    uint256 internal permitNonce;
    uint256 internal permitDeadline;
    uint8 internal permitV;
    bytes32 internal permitR;
    bytes32 internal permitS;

    /// @dev The accepted signature of each slot (indexed by `Slot`).
    bytes[SLOTS] internal validSig;

    function setUp() public override {
        super.setUp();
        vm.warp(1_700_000_000);
        expiry = uint64(block.timestamp + 1 days);

        openId = _openFunded(DEPOSIT_A, DEPOSIT_B);
        closedId = _openFunded(DEPOSIT_A, DEPOSIT_B);
        vm.prank(bob);
        manager.close(closedId, 0, 0, "");

        permitNonce = usdc.nonces(alice);
        permitDeadline = block.timestamp + 1 days;
        (permitV, permitR, permitS) = _signPermit(alicePk, address(manager), PERMIT_DEPOSIT, permitDeadline);

        for (uint256 i; i < SLOTS; i++) {
            Slot slot = Slot(i);
            validSig[i] = _sign(_signerPk(slot), _messageDigest(slot));
        }
    }

    // ============================================================ accepted

    function test_validSignaturesAccepted() public {
        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < SLOTS; i++) {
            Slot slot = Slot(i);
            _submit(slot, validSig[i]);
            if (slot == Slot.Close) {
                assertEq(uint8(_channel(openId).state), uint8(IChannelManager.ChannelState.Closed));
                assertEq(_channel(openId).nonceB, NONCE);
                assertEq(_channel(openId).transferredB, TRANSFERRED);
            } else if (slot == Slot.UpdateProof) {
                assertEq(_channel(closedId).nonceA, NONCE);
                assertEq(_channel(closedId).transferredA, TRANSFERRED);
            } else if (slot == Slot.WithdrawA || slot == Slot.WithdrawB) {
                assertEq(_channel(openId).withdrawnA, WITHDRAW_TOTAL);
            } else if (slot == Slot.CoopCloseA || slot == Slot.CoopCloseB) {
                assertEq(uint8(_channel(openId).state), uint8(IChannelManager.ChannelState.Settled));
            } else {
                IChannelManager.ChannelInfo memory c = _channel(manager.channelCount());
                assertEq(c.participantA, alice);
                assertEq(c.participantB, bob);
                assertEq(c.depositA, PERMIT_DEPOSIT);
            }
            vm.revertToState(snapshot);
        }
    }

    /// @dev The permit-backed open consumed the permit nonce the funder signed for.
    function test_openWithPermit_relayedConsumesPermitNonce() public {
        _submit(Slot.OpenWithPermit, validSig[uint256(Slot.OpenWithPermit)]);
        assertEq(usdc.nonces(alice), permitNonce + 1);
        // The same relayed call again: the permit nonce moved on, so the signature no longer matches.
        bytes memory sig = validSig[uint256(Slot.OpenWithPermit)];
        bytes32 digestNow =
            _digest(_openWithPermitStructHash(address(usdc), bob, PERMIT_DEPOSIT, PERIOD, permitNonce + 1));
        vm.expectRevert(
            abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, alice, _ecrecover(digestNow, sig))
        );
        _submit(Slot.OpenWithPermit, sig);
    }

    /// @dev The funder signs one `OpenWithPermit` per permit nonce ("so it can be used once"). A
    /// relayer that submits a bogus permit leaves that nonce unused; if the funder has a standing
    /// allowance (as anyone who used `open` has), the signature must still open one channel at
    /// most. Outcome only: a fix may refuse the first call already.
    function test_openWithPermit_relayedFunderSignatureIsSingleUse() public {
        bytes memory sig = validSig[uint256(Slot.OpenWithPermit)];
        uint256 aliceBefore = usdc.balanceOf(alice);
        uint256 countBefore = manager.channelCount();

        for (uint256 i; i < 3; i++) {
            vm.prank(carol);
            try manager.openWithPermit(
                address(usdc),
                alice,
                bob,
                PERMIT_DEPOSIT,
                PERIOD,
                permitDeadline,
                0,
                bytes32(0),
                bytes32(0),
                sig
            ) {}
                catch {}
        }
        assertLe(manager.channelCount(), countBefore + 1, "one signature, one channel");
        assertGe(usdc.balanceOf(alice), aliceBefore - PERMIT_DEPOSIT, "alice signed for one deposit only");
    }

    // ============================================================ wrong signer

    function test_wrongSigner_carol() public {
        for (uint256 i; i < SLOTS; i++) {
            Slot slot = Slot(i);
            _expectSignerRefused(slot, _sign(carolPk, _messageDigest(slot)), carol);
        }
    }

    /// @dev The other party's signature in a slot: bob's in alice's and the reverse; for `close`,
    /// the closer's own proof instead of the partner's; for the permit open, the partner's.
    function test_swappedSigner() public {
        for (uint256 i; i < SLOTS; i++) {
            Slot slot = Slot(i);
            if (slot == Slot.UpdateProof) continue; // either participant may sign an update
            uint256 otherPk = _signerPk(slot) == alicePk ? bobPk : alicePk;
            _expectSignerRefused(slot, _sign(otherPk, _messageDigest(slot)), vm.addr(otherPk));
        }
    }

    function test_withdraw_bothSignaturesSwapped() public {
        bytes memory sigA = validSig[uint256(Slot.WithdrawA)];
        bytes memory sigB = validSig[uint256(Slot.WithdrawB)];
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, alice, bob));
        manager.withdraw(openId, alice, WITHDRAW_TOTAL, expiry, sigB, sigA);
    }

    function test_cooperativeClose_bothSignaturesSwapped() public {
        bytes memory sigA = validSig[uint256(Slot.CoopCloseA)];
        bytes memory sigB = validSig[uint256(Slot.CoopCloseB)];
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerMismatch.selector, alice, bob));
        manager.cooperativeClose(openId, PAYOUT_A, PAYOUT_B, sigB, sigA);
    }

    /// @dev updateProof records a proof under whoever signed it: bob's signature updates bob's
    /// proof, never alice's.
    function test_updateProof_recordsUnderTheRecoveredSigner() public {
        vm.prank(carol);
        manager.updateProof(closedId, NONCE, TRANSFERRED, _signProof(bobPk, closedId, NONCE, TRANSFERRED));
        assertEq(_channel(closedId).nonceB, NONCE);
        assertEq(_channel(closedId).transferredB, TRANSFERRED);
        assertEq(_channel(closedId).nonceA, 0);
        assertEq(_channel(closedId).transferredA, 0);
    }

    // ============================================================ whose proof wins

    /// @dev A balance proof speaks against its signer: it admits what the signer paid. During a
    /// dispute the signer itself holds its key, so it can always sign a proof of its own with a
    /// higher nonce and a lower amount. Such a proof must not cut what the partner is paid.
    /// These tests check the outcome only: the forged update may be refused or ignored.
    function test_updateProof_payerCannotEraseItsPaymentsAfterTheRealProof() public {
        // bob holds alice's proof: she paid him 30. alice closes; bob's watchtower records it.
        uint128 paid = uint128(30 * USDC);
        vm.prank(alice);
        manager.close(openId, 0, 0, "");
        vm.prank(carol);
        manager.updateProof(openId, NONCE, paid, _signProof(alicePk, openId, NONCE, paid));

        // alice signs a "newer" proof of her own that says she paid nothing, and submits it.
        bytes memory forged = _signProof(alicePk, openId, NONCE + 1, 0);
        vm.prank(alice);
        try manager.updateProof(openId, NONCE + 1, 0, forged) {} catch {}

        _assertSettlesTo(openId, DEPOSIT_A - paid, DEPOSIT_B + paid);
    }

    function test_updateProof_payerCannotEraseItsPaymentsBeforeTheRealProof() public {
        uint128 paid = uint128(30 * USDC);
        vm.prank(alice);
        manager.close(openId, 0, 0, "");
        // alice is first: her own proof with the largest nonce there is and nothing paid.
        bytes memory forged = _signProof(alicePk, openId, type(uint64).max, 0);
        vm.prank(alice);
        try manager.updateProof(openId, type(uint64).max, 0, forged) {} catch {}
        // bob's watchtower then submits the proof alice really gave him.
        bytes memory real = _signProof(alicePk, openId, NONCE, paid);
        vm.prank(carol);
        try manager.updateProof(openId, NONCE, paid, real) {} catch {}

        _assertSettlesTo(openId, DEPOSIT_A - paid, DEPOSIT_B + paid);
    }

    function test_updateProof_nonCloserCannotEraseItsPaymentsRecordedAtClose() public {
        // bob paid alice 30; alice closes with that proof of bob's.
        uint128 paid = uint128(30 * USDC);
        vm.prank(alice);
        manager.close(openId, NONCE, paid, _signProof(bobPk, openId, NONCE, paid));
        // bob answers with a proof of his own: higher nonce, nothing paid.
        bytes memory forged = _signProof(bobPk, openId, NONCE + 1, 0);
        vm.prank(bob);
        try manager.updateProof(openId, NONCE + 1, 0, forged) {} catch {}

        _assertSettlesTo(openId, DEPOSIT_A + paid, DEPOSIT_B - paid);
    }

    function _assertSettlesTo(uint256 id, uint256 payoutA, uint256 payoutB) internal {
        vm.warp(_channel(id).settleAfter);
        uint256 aliceBefore = usdc.balanceOf(alice);
        uint256 bobBefore = usdc.balanceOf(bob);
        manager.settle(id);
        assertEq(usdc.balanceOf(alice) - aliceBefore, payoutA, "payout A");
        assertEq(usdc.balanceOf(bob) - bobBefore, payoutB, "payout B");
    }

    // ============================================================ non-canonical signatures (P2)

    function test_highS_refused() public {
        for (uint256 i; i < SLOTS; i++) {
            Slot slot = Slot(i);
            bytes memory sig = _highS(validSig[i]);
            // The twin is a valid signature for plain ecrecover: only the low-s rule refuses it.
            assertEq(_ecrecover(_messageDigest(slot), sig), vm.addr(_signerPk(slot)));
            _expectInvalid(slot, sig);
        }
    }

    function test_badV_refused() public {
        uint8[4] memory vs = [0, 1, 29, 255];
        for (uint256 i; i < SLOTS; i++) {
            (bytes32 r, bytes32 s, uint8 v) = _split(validSig[i]);
            for (uint256 j; j < vs.length; j++) {
                _expectInvalid(Slot(i), abi.encodePacked(r, s, vs[j]));
            }
            // The same signature with v as a 0/1 recovery id (accepted by some libraries).
            _expectInvalid(Slot(i), abi.encodePacked(r, s, v - 27));
        }
    }

    function test_wrongLength_refused() public {
        for (uint256 i; i < SLOTS; i++) {
            Slot slot = Slot(i);
            (bytes32 r, bytes32 s, uint8 v) = _split(validSig[i]);
            // 64 bytes: the EIP-2098 compact form of the valid signature.
            bytes32 vs = bytes32(uint256(s) | (uint256(v - 27) << 255));
            _expectInvalid(slot, abi.encodePacked(r, vs));
            _expectInvalid(slot, abi.encodePacked(r, s));
            // 66 bytes: the valid signature with one byte appended.
            _expectInvalid(slot, abi.encodePacked(validSig[i], uint8(0)));
            _expectInvalid(slot, "");
        }
    }

    function test_zeroSigner_refused() public {
        bytes32 invalidX = bytes32(_notOnCurveX());
        for (uint256 i; i < SLOTS; i++) {
            Slot slot = Slot(i);
            bytes32 digest = _messageDigest(slot);
            (bytes32 r, bytes32 s, uint8 v) = _split(validSig[i]);
            bytes[4] memory sigs = [
                abi.encodePacked(bytes32(0), s, v), // r = 0
                abi.encodePacked(r, bytes32(0), v), // s = 0 (passes the low-s rule)
                abi.encodePacked(bytes32(SECP256K1_N), s, v), // r not below the group order
                abi.encodePacked(invalidX, s, v) // r is no point's x coordinate
            ];
            for (uint256 j; j < sigs.length; j++) {
                assertEq(_ecrecover(digest, sigs[j]), address(0), "ecrecover must fail for this case");
                _expectInvalid(slot, sigs[j]);
            }
        }
    }

    /// @dev Any 65-byte signature: refused as invalid exactly when the node's rules say so, and
    /// otherwise refused as the wrong signer (a random signature never recovers to alice or bob).
    function testFuzz_arbitrarySignature(uint8 slotSeed, bytes32 r, bytes32 s, uint8 v) public {
        Slot slot = Slot(bound(slotSeed, 0, SLOTS - 1));
        bytes memory sig = abi.encodePacked(r, s, v);
        address recovered = ecrecover(_messageDigest(slot), v, r, s);
        if ((v != 27 && v != 28) || uint256(s) > SECP256K1N_HALF || recovered == address(0)) {
            _expectInvalid(slot, sig);
        } else {
            _expectSignerRefused(slot, sig, recovered);
        }
    }

    function testFuzz_wrongLength(uint8 slotSeed, bytes memory sig) public {
        vm.assume(sig.length != 65);
        _expectInvalid(Slot(bound(slotSeed, 0, SLOTS - 1)), sig);
    }

    // ============================================================ domain separation (P1)

    function test_otherChainId_refused() public {
        bytes32 domain = _domainSeparator(address(manager), OTHER_CHAIN_ID);
        for (uint256 i; i < SLOTS; i++) {
            Slot slot = Slot(i);
            _expectRecoveredRefused(slot, _sign(_signerPk(slot), _digestIn(domain, _structHash(slot))));
        }
    }

    /// @dev Control: on that chain id the very same signatures are accepted (the co-signatures
    /// `_submit` adds are replaced by their other-chain versions too).
    function test_otherChainId_acceptedOnThatChain() public {
        bytes32 domain = _domainSeparator(address(manager), OTHER_CHAIN_ID);
        for (uint256 i; i < SLOTS; i++) {
            validSig[i] = _sign(_signerPk(Slot(i)), _digestIn(domain, _structHash(Slot(i))));
        }
        vm.chainId(OTHER_CHAIN_ID);
        // The USDC permit the relayed open carries is chain-bound too.
        (permitV, permitR, permitS) = _signPermit(alicePk, address(manager), PERMIT_DEPOSIT, permitDeadline);
        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < SLOTS; i++) {
            _submit(Slot(i), validSig[i]);
            vm.revertToState(snapshot);
        }
    }

    function testFuzz_otherChainId_refused(uint8 slotSeed, uint64 chainId) public {
        vm.assume(chainId != block.chainid);
        Slot slot = Slot(bound(slotSeed, 0, SLOTS - 1));
        bytes32 domain = _domainSeparator(address(manager), chainId);
        _expectRecoveredRefused(slot, _sign(_signerPk(slot), _digestIn(domain, _structHash(slot))));
    }

    function test_otherContract_refused() public {
        ChannelManager other = new ChannelManager(MIN_PERIOD, MAX_PERIOD);
        bytes32 domain = _domainSeparator(address(other), block.chainid);
        for (uint256 i; i < SLOTS; i++) {
            Slot slot = Slot(i);
            _expectRecoveredRefused(slot, _sign(_signerPk(slot), _digestIn(domain, _structHash(slot))));
        }

        // Control: bob's proof signed for the other contract closes the same-numbered channel there.
        bytes memory sig = _sign(bobPk, _digestIn(domain, _structHash(Slot.Close)));
        vm.prank(alice);
        usdc.approve(address(other), type(uint256).max);
        vm.prank(alice);
        uint256 id = other.open(address(usdc), bob, DEPOSIT_A, PERIOD);
        assertEq(id, openId);
        vm.prank(alice);
        other.close(id, NONCE, TRANSFERRED, sig);
        assertEq(other.getChannel(id).nonceB, NONCE);
    }

    function test_otherChannelId_refused() public {
        for (uint256 i; i < SLOTS; i++) {
            Slot slot = Slot(i);
            if (slot == Slot.OpenWithPermit) continue; // names no channel; see test_openWithPermit_boundFields
            uint256 otherId = _channelOf(slot) == openId ? closedId : openId;
            _expectRecoveredRefused(slot, _sign(_signerPk(slot), _digest(_structHash(slot, otherId))));
        }
    }

    /// @dev The funder's open signature binds token, partner, amount, period and permit nonce.
    function test_openWithPermit_boundFields() public {
        bytes32[5] memory tampered = [
            _openWithPermitStructHash(address(manager), bob, PERMIT_DEPOSIT, PERIOD, permitNonce),
            _openWithPermitStructHash(address(usdc), carol, PERMIT_DEPOSIT, PERIOD, permitNonce),
            _openWithPermitStructHash(address(usdc), bob, PERMIT_DEPOSIT + 1, PERIOD, permitNonce),
            _openWithPermitStructHash(address(usdc), bob, PERMIT_DEPOSIT, PERIOD + 1, permitNonce),
            _openWithPermitStructHash(address(usdc), bob, PERMIT_DEPOSIT, PERIOD, permitNonce + 1)
        ];
        for (uint256 j; j < tampered.length; j++) {
            _expectRecoveredRefused(Slot.OpenWithPermit, _sign(alicePk, _digest(tampered[j])));
        }
    }

    /// @dev alice and bob close and settle channel 1, then open a new channel with the same
    /// deposits: nothing signed for channel 1 is accepted on the new one.
    function test_reopenedChannel_refused() public {
        uint256 oldId = openId;
        bytes memory oldProofB = validSig[uint256(Slot.Close)];
        bytes memory oldProofA = _signProof(alicePk, oldId, NONCE, TRANSFERRED);
        bytes memory oldWithdrawA = validSig[uint256(Slot.WithdrawA)];
        bytes memory oldWithdrawB = validSig[uint256(Slot.WithdrawB)];
        bytes memory oldCoopA = validSig[uint256(Slot.CoopCloseA)];
        bytes memory oldCoopB = validSig[uint256(Slot.CoopCloseB)];

        vm.prank(alice);
        manager.close(oldId, NONCE, TRANSFERRED, oldProofB);
        vm.warp(block.timestamp + PERIOD);
        manager.settle(oldId);

        uint256 newId = _openFunded(DEPOSIT_A, DEPOSIT_B);
        assertTrue(newId != oldId);

        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.SignerMismatch.selector,
                bob,
                _ecrecover(_proofDigest(newId, NONCE, TRANSFERRED), oldProofB)
            )
        );
        vm.prank(alice);
        manager.close(newId, NONCE, TRANSFERRED, oldProofB);

        bytes32 withdrawDigest = _digest(_withdrawStructHash(newId));
        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.SignerMismatch.selector, alice, _ecrecover(withdrawDigest, oldWithdrawA)
            )
        );
        manager.withdraw(newId, alice, WITHDRAW_TOTAL, expiry, oldWithdrawA, oldWithdrawB);

        bytes32 coopDigest = _digest(_coopStructHash(newId));
        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.SignerMismatch.selector, alice, _ecrecover(coopDigest, oldCoopA)
            )
        );
        manager.cooperativeClose(newId, PAYOUT_A, PAYOUT_B, oldCoopA, oldCoopB);

        vm.prank(bob);
        manager.close(newId, 0, 0, "");
        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.SignerNotParticipant.selector,
                _ecrecover(_proofDigest(newId, NONCE, TRANSFERRED), oldProofA)
            )
        );
        vm.prank(carol);
        manager.updateProof(newId, NONCE, TRANSFERRED, oldProofA);

        // Control: the same proof signed for the new channel is accepted.
        vm.prank(carol);
        manager.updateProof(newId, NONCE, TRANSFERRED, _signProof(alicePk, newId, NONCE, TRANSFERRED));
        assertEq(_channel(newId).nonceA, NONCE);
    }

    /// @dev The right signer's signature over another kind of message (same channel, values as
    /// close as the types allow), over the bare struct hash, or as an eth_sign message: refused.
    function test_messageTypeConfusion_refused() public {
        for (uint256 i; i < SLOTS; i++) {
            Slot slot = Slot(i);
            uint256 pk = _signerPk(slot);
            uint256 id = _channelOf(slot) == 0 ? openId : _channelOf(slot);
            bytes32[4] memory foreign = [
                _digest(keccak256(abi.encode(BALANCE_PROOF_TYPEHASH, id, NONCE, TRANSFERRED))),
                _digest(_withdrawStructHash(id)),
                _digest(_coopStructHash(id)),
                _digest(_openWithPermitStructHash(address(usdc), bob, PERMIT_DEPOSIT, PERIOD, permitNonce))
            ];
            for (uint256 j; j < foreign.length; j++) {
                if (j == _kind(slot)) continue; // the slot's own message kind
                _expectRecoveredRefused(slot, _sign(pk, foreign[j]));
            }
            bytes32 own = _messageDigest(slot);
            _expectRecoveredRefused(slot, _sign(pk, _structHash(slot)));
            _expectRecoveredRefused(
                slot, _sign(pk, keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", own)))
            );
        }
    }

    /// @dev A balance proof signature offered as each co-signed message, spelled out.
    function test_balanceProofSignature_asWithdrawOrCooperativeClose() public {
        bytes memory proofA = _signProof(alicePk, openId, NONCE, TRANSFERRED);
        bytes memory proofB = _signProof(bobPk, openId, NONCE, TRANSFERRED);

        bytes32 coopDigest = _digest(_coopStructHash(openId));
        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.SignerMismatch.selector, alice, _ecrecover(coopDigest, proofA)
            )
        );
        manager.cooperativeClose(openId, PAYOUT_A, PAYOUT_B, proofA, proofB);

        bytes32 withdrawDigest = _digest(_withdrawStructHash(openId));
        vm.expectRevert(
            abi.encodeWithSelector(
                IChannelManager.SignerMismatch.selector, alice, _ecrecover(withdrawDigest, proofA)
            )
        );
        manager.withdraw(openId, alice, WITHDRAW_TOTAL, expiry, proofA, proofB);
    }

    // ============================================================ digest views

    function test_typehashesMatch() public view {
        assertEq(manager.BALANCE_PROOF_TYPEHASH(), BALANCE_PROOF_TYPEHASH);
        assertEq(manager.WITHDRAW_TYPEHASH(), WITHDRAW_TYPEHASH);
        assertEq(manager.COOPERATIVE_CLOSE_TYPEHASH(), COOPERATIVE_CLOSE_TYPEHASH);
        assertEq(manager.OPEN_WITH_PERMIT_TYPEHASH(), OPEN_WITH_PERMIT_TYPEHASH);
        assertEq(manager.OPEN_AUTHORIZATION_TYPEHASH(), OPEN_AUTHORIZATION_TYPEHASH);
    }

    function test_eip712Domain() public view {
        (, string memory name, string memory version, uint256 chainId, address verifyingContract,,) =
            manager.eip712Domain();
        assertEq(name, "Farthing");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifyingContract, address(manager));
        assertEq(manager.DOMAIN_SEPARATOR(), _domainSeparator(address(manager), block.chainid));
    }

    function testFuzz_domainSeparator(uint64 chainId) public {
        vm.assume(chainId != 0);
        vm.chainId(chainId);
        assertEq(manager.DOMAIN_SEPARATOR(), _domainSeparator(address(manager), chainId));
        assertEq(
            manager.balanceProofDigest(openId, NONCE, TRANSFERRED), _proofDigest(openId, NONCE, TRANSFERRED)
        );
    }

    function testFuzz_balanceProofDigest(uint256 id, uint64 nonce, uint128 transferred) public view {
        assertEq(manager.balanceProofDigest(id, nonce, transferred), _proofDigest(id, nonce, transferred));
    }

    function testFuzz_withdrawDigest(uint256 id, address participant, uint96 total, uint64 expiry_)
        public
        view
    {
        assertEq(
            manager.withdrawDigest(id, participant, total, expiry_),
            _digest(keccak256(abi.encode(WITHDRAW_TYPEHASH, id, participant, total, expiry_)))
        );
    }

    function testFuzz_cooperativeCloseDigest(uint256 id, uint96 payoutA, uint96 payoutB) public view {
        (uint96 withdrawnA, uint96 withdrawnB) = _withdrawn(id);
        assertEq(
            manager.cooperativeCloseDigest(id, payoutA, payoutB),
            _digest(
                keccak256(
                    abi.encode(COOPERATIVE_CLOSE_TYPEHASH, id, payoutA, payoutB, withdrawnA, withdrawnB)
                )
            )
        );
    }

    /// @dev The close digest names the withdrawal totals the channel has when it is signed; the
    /// base's vm.load shortcut for them must read the same slot the contract uses.
    function test_withdrawnSlot_matchesView() public {
        uint256 id = _openFunded(100e6, 50e6);
        _withdraw(id, alice, 7e6);
        _withdraw(id, bob, 3e6);
        (uint96 withdrawnA, uint96 withdrawnB) = _withdrawn(id);
        assertEq(withdrawnA, _channel(id).withdrawnA);
        assertEq(withdrawnB, _channel(id).withdrawnB);
        assertEq(withdrawnA, 7e6);
        assertEq(withdrawnB, 3e6);
    }

    function testFuzz_openWithPermitDigest(
        address token,
        address partner,
        uint96 deposit,
        uint32 period,
        uint256 nonce
    ) public view {
        assertEq(
            manager.openWithPermitDigest(token, partner, deposit, period, nonce),
            _digest(_openWithPermitStructHash(token, partner, deposit, period, nonce))
        );
    }

    function testFuzz_openAuthorizationNonce(address partner, uint32 period, bytes32 salt) public view {
        assertEq(
            manager.openAuthorizationNonce(partner, period, salt),
            _openAuthorizationNonce(partner, period, salt)
        );
    }

    /// @dev Signatures made with the base's digests for fuzzed values are accepted by the contract
    /// (the digests agree in use, not only through the views).
    function testFuzz_signedWithBaseDigest_accepted(uint64 nonce, uint128 transferred, uint96 total) public {
        nonce = uint64(bound(nonce, 1, type(uint64).max));
        total = uint96(bound(total, 1, DEPOSIT_A + DEPOSIT_B));
        manager.withdraw(
            openId,
            bob,
            total,
            expiry,
            _signWithdraw(alicePk, openId, bob, total, expiry),
            _signWithdraw(bobPk, openId, bob, total, expiry)
        );
        assertEq(_channel(openId).withdrawnB, total);
        vm.prank(alice);
        manager.close(openId, nonce, transferred, _signProof(bobPk, openId, nonce, transferred));
        assertEq(_channel(openId).nonceB, nonce);
        assertEq(_channel(openId).transferredB, transferred);
    }

    // ============================================================ helpers

    function _signerPk(Slot slot) internal view returns (uint256) {
        if (slot == Slot.Close || slot == Slot.WithdrawB || slot == Slot.CoopCloseB) return bobPk;
        return alicePk;
    }

    /// @dev The channel a slot's message names (0 for the permit open).
    function _channelOf(Slot slot) internal view returns (uint256) {
        if (slot == Slot.UpdateProof) return closedId;
        if (slot == Slot.OpenWithPermit) return 0;
        return openId;
    }

    /// @dev 0 balance proof, 1 withdraw, 2 cooperative close, 3 permit open.
    function _kind(Slot slot) internal pure returns (uint256) {
        if (slot == Slot.Close || slot == Slot.UpdateProof) return 0;
        if (slot == Slot.WithdrawA || slot == Slot.WithdrawB) return 1;
        if (slot == Slot.CoopCloseA || slot == Slot.CoopCloseB) return 2;
        return 3;
    }

    function _structHash(Slot slot) internal view returns (bytes32) {
        return _structHash(slot, _channelOf(slot));
    }

    function _structHash(Slot slot, uint256 id) internal view returns (bytes32) {
        uint256 kind = _kind(slot);
        if (kind == 0) return keccak256(abi.encode(BALANCE_PROOF_TYPEHASH, id, NONCE, TRANSFERRED));
        if (kind == 1) return _withdrawStructHash(id);
        if (kind == 2) return _coopStructHash(id);
        return _openWithPermitStructHash(address(usdc), bob, PERMIT_DEPOSIT, PERIOD, permitNonce);
    }

    function _withdrawStructHash(uint256 id) internal view returns (bytes32) {
        return keccak256(abi.encode(WITHDRAW_TYPEHASH, id, alice, WITHDRAW_TOTAL, expiry));
    }

    function _coopStructHash(uint256 id) internal view returns (bytes32) {
        (uint96 withdrawnA, uint96 withdrawnB) = _withdrawn(id);
        return
            keccak256(abi.encode(COOPERATIVE_CLOSE_TYPEHASH, id, PAYOUT_A, PAYOUT_B, withdrawnA, withdrawnB));
    }

    function _openWithPermitStructHash(
        address token,
        address partner,
        uint96 deposit,
        uint32 period,
        uint256 nonce
    ) internal pure returns (bytes32) {
        return keccak256(abi.encode(OPEN_WITH_PERMIT_TYPEHASH, token, partner, deposit, period, nonce));
    }

    /// @dev The digest the contract checks for this slot.
    function _messageDigest(Slot slot) internal view returns (bytes32) {
        return _digest(_structHash(slot));
    }

    function _digestIn(bytes32 domainSeparator, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator, structHash));
    }

    /// @dev Plain ecrecover of a 65-byte r|s|v signature (no canonical checks).
    function _ecrecover(bytes32 digest, bytes memory sig) internal pure returns (address) {
        (bytes32 r, bytes32 s, uint8 v) = _split(sig);
        return ecrecover(digest, v, r, s);
    }

    /// @dev The smallest x that is no point's x coordinate on secp256k1 (ecrecover returns zero).
    function _notOnCurveX() internal pure returns (uint256 x) {
        for (x = 1; x < 64; x++) {
            if (ecrecover(bytes32(uint256(1)), 27, bytes32(x), bytes32(uint256(1))) == address(0)) return x;
        }
        revert("no x found");
    }

    /// @dev Submit `sig` in `slot`, every other signature and argument valid. Makes exactly one
    /// external call (so a preceding vm.expectRevert applies to it).
    function _submit(Slot slot, bytes memory sig) internal {
        if (slot == Slot.Close) {
            vm.prank(alice);
            manager.close(openId, NONCE, TRANSFERRED, sig);
        } else if (slot == Slot.UpdateProof) {
            vm.prank(carol);
            manager.updateProof(closedId, NONCE, TRANSFERRED, sig);
        } else if (slot == Slot.WithdrawA) {
            manager.withdraw(openId, alice, WITHDRAW_TOTAL, expiry, sig, validSig[uint256(Slot.WithdrawB)]);
        } else if (slot == Slot.WithdrawB) {
            manager.withdraw(openId, alice, WITHDRAW_TOTAL, expiry, validSig[uint256(Slot.WithdrawA)], sig);
        } else if (slot == Slot.CoopCloseA) {
            manager.cooperativeClose(openId, PAYOUT_A, PAYOUT_B, sig, validSig[uint256(Slot.CoopCloseB)]);
        } else if (slot == Slot.CoopCloseB) {
            manager.cooperativeClose(openId, PAYOUT_A, PAYOUT_B, validSig[uint256(Slot.CoopCloseA)], sig);
        } else {
            vm.prank(carol);
            manager.openWithPermit(
                address(usdc),
                alice,
                bob,
                PERMIT_DEPOSIT,
                PERIOD,
                permitDeadline,
                permitV,
                permitR,
                permitS,
                sig
            );
        }
    }

    function _expectInvalid(Slot slot, bytes memory sig) internal {
        vm.expectRevert(abi.encodeWithSelector(IChannelManager.InvalidSignature.selector));
        _submit(slot, sig);
    }

    /// @dev `sig` is well-formed and recovers to `recovered`, who is not the slot's signer.
    function _expectSignerRefused(Slot slot, bytes memory sig, address recovered) internal {
        assertEq(_ecrecover(_messageDigest(slot), sig), recovered, "test setup: recovered signer");
        if (slot == Slot.UpdateProof) {
            vm.expectRevert(abi.encodeWithSelector(IChannelManager.SignerNotParticipant.selector, recovered));
        } else {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IChannelManager.SignerMismatch.selector, vm.addr(_signerPk(slot)), recovered
                )
            );
        }
        _submit(slot, sig);
    }

    /// @dev A signature made for some other digest: the contract recovers someone else from it.
    function _expectRecoveredRefused(Slot slot, bytes memory sig) internal {
        address recovered = _ecrecover(_messageDigest(slot), sig);
        assertTrue(recovered != address(0), "test setup: recovers to zero");
        assertTrue(recovered != alice && recovered != bob, "test setup: recovers to a participant");
        _expectSignerRefused(slot, sig, recovered);
    }
}
