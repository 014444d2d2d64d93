// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title MockUSDC
/// @notice A test stand-in for Circle's USDC (FiatTokenV2_2) that behaves like the real token wherever a
///         contract holding USDC can tell the difference: 6 decimals, pause, blacklist, minters with
///         allowances, EIP-2612 permit, EIP-3009 transfer/receive/cancel authorizations, the same revert
///         strings, the same order of checks, and no infinite-allowance shortcut in `transferFrom`.
/// @dev Storage follows v2.2 where it drives gas: an account's blacklist flag lives in the high bit of its
///      balance word (`balanceAndBlacklistStates`), so a transfer reads no separate blacklist slot and
///      balances are capped at 2^255 - 1. Like USDC's `initializeV2`, the token blacklists its own
///      address, so tokens sent to it revert. Differences from the real token: no proxy (real USDC pays
///      a delegatecall and an implementation-slot read on top), a single `owner` holds every admin role
///      (masterMinter, pauser, blacklister, rescuer), signatures are ECDSA only (no ERC-1271 wallets),
///      and there are no `bytes signature` overloads.
contract MockUSDC is EIP712, Nonces {
    // ---------------------------------------------------------------------------------------------
    // Constants
    // ---------------------------------------------------------------------------------------------

    /// @notice Token symbol.
    string public constant symbol = "USDC";
    /// @notice Token decimals, as USDC.
    uint8 public constant decimals = 6;

    /// @notice keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)")
    bytes32 public constant PERMIT_TYPEHASH =
        0x6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9;
    /// @notice keccak256("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,
    ///         uint256 validBefore,bytes32 nonce)")
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH =
        0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267;
    /// @notice keccak256("ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,
    ///         uint256 validBefore,bytes32 nonce)")
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH =
        0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8;
    /// @notice keccak256("CancelAuthorization(address authorizer,bytes32 nonce)")
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429;

    /// @dev The high bit of a balance word: set when the account is blacklisted.
    uint256 private constant BLACKLIST_BIT = 1 << 255;
    /// @dev The low 255 bits of a balance word: the balance.
    uint256 private constant BALANCE_MASK = BLACKLIST_BIT - 1;

    // ---------------------------------------------------------------------------------------------
    // Storage
    // ---------------------------------------------------------------------------------------------

    /// @notice Holder of every admin role (owner, masterMinter, pauser, blacklister).
    address public owner;
    /// @notice True while the token is paused.
    bool public paused;

    /// @dev Balance in the low 255 bits, blacklist flag in the high bit (FiatTokenV2_2 layout).
    mapping(address account => uint256) private balanceAndBlacklistStates;
    mapping(address holder => mapping(address spender => uint256)) private allowed;
    uint256 private totalSupply_;
    mapping(address minter => bool) private minters;
    mapping(address minter => uint256) private minterAllowed;
    mapping(address authorizer => mapping(bytes32 nonce => bool)) private _authorizationStates;

    // ---------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event Mint(address indexed minter, address indexed to, uint256 amount);
    event Burn(address indexed burner, uint256 amount);
    event MinterConfigured(address indexed minter, uint256 minterAllowedAmount);
    event MinterRemoved(address indexed oldMinter);
    event Pause();
    event Unpause();
    event Blacklisted(address indexed _account);
    event UnBlacklisted(address indexed _account);
    event OwnershipTransferred(address previousOwner, address newOwner);
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    // ---------------------------------------------------------------------------------------------
    // Modifiers (same messages as FiatToken)
    // ---------------------------------------------------------------------------------------------

    modifier whenNotPaused() {
        require(!paused, "Pausable: paused");
        _;
    }

    modifier notBlacklisted(address account) {
        require(!_isBlacklisted(account), "Blacklistable: account is blacklisted");
        _;
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "Ownable: caller is not the owner");
        _;
    }

    modifier onlyMasterMinter() {
        require(msg.sender == owner, "FiatToken: caller is not the masterMinter");
        _;
    }

    modifier onlyPauser() {
        require(msg.sender == owner, "Pausable: caller is not the pauser");
        _;
    }

    modifier onlyBlacklister() {
        require(msg.sender == owner, "Blacklistable: caller is not the blacklister");
        _;
    }

    modifier onlyMinters() {
        require(minters[msg.sender], "FiatToken: caller is not a minter");
        _;
    }

    // ---------------------------------------------------------------------------------------------
    // Construction
    // ---------------------------------------------------------------------------------------------

    /// @notice Deploys the token with `owner_` holding every admin role, named `name_`, whose EIP-712
    ///         domain is (`name_`, `version_`, chain id, this contract). Circle's USDC is ("USD Coin", "2")
    ///         on Ethereum and Base, ("USDC", "2") on Base Sepolia.
    /// @param owner_ The owner, masterMinter, pauser and blacklister.
    /// @param name_ The token name, also the EIP-712 domain name.
    /// @param version_ The EIP-712 domain version.
    constructor(address owner_, string memory name_, string memory version_) EIP712(name_, version_) {
        require(owner_ != address(0), "Ownable: new owner is the zero address");
        owner = owner_;
        emit OwnershipTransferred(address(0), owner_);
        // As FiatTokenV2.initializeV2: the token contract itself is blacklisted.
        _setBlacklistState(address(this), true);
        emit Blacklisted(address(this));
    }

    /// @notice Token name, also the EIP-712 domain name.
    /// @return The name given at construction.
    function name() external view returns (string memory) {
        return _EIP712Name();
    }

    /// @notice The version of the EIP-712 domain ("2" for FiatTokenV2+).
    /// @return The version given at construction.
    function version() external view returns (string memory) {
        return _EIP712Version();
    }

    // ---------------------------------------------------------------------------------------------
    // ERC-20
    // ---------------------------------------------------------------------------------------------

    /// @notice Total amount of tokens in existence.
    /// @return The total supply.
    function totalSupply() external view returns (uint256) {
        return totalSupply_;
    }

    /// @notice Balance of `account` (the blacklist bit is not part of it).
    /// @param account The holder.
    /// @return The balance.
    function balanceOf(address account) external view returns (uint256) {
        return _balanceOf(account);
    }

    /// @notice Amount `spender` may still move out of `owner_`'s balance.
    /// @param owner_ The token holder.
    /// @param spender The spender.
    /// @return The remaining allowance.
    function allowance(address owner_, address spender) external view returns (uint256) {
        return allowed[owner_][spender];
    }

    /// @notice Sets `spender`'s allowance over the caller's tokens to `value`.
    /// @param spender The spender.
    /// @param value The new allowance.
    /// @return True.
    function approve(address spender, uint256 value)
        external
        whenNotPaused
        notBlacklisted(msg.sender)
        notBlacklisted(spender)
        returns (bool)
    {
        _approve(msg.sender, spender, value);
        return true;
    }

    /// @notice Raises `spender`'s allowance over the caller's tokens by `increment`.
    /// @param spender The spender.
    /// @param increment The amount to add.
    /// @return True.
    function increaseAllowance(address spender, uint256 increment)
        external
        whenNotPaused
        notBlacklisted(msg.sender)
        notBlacklisted(spender)
        returns (bool)
    {
        _approve(msg.sender, spender, allowed[msg.sender][spender] + increment);
        return true;
    }

    /// @notice Lowers `spender`'s allowance over the caller's tokens by `decrement`.
    /// @param spender The spender.
    /// @param decrement The amount to subtract.
    /// @return True.
    function decreaseAllowance(address spender, uint256 decrement)
        external
        whenNotPaused
        notBlacklisted(msg.sender)
        notBlacklisted(spender)
        returns (bool)
    {
        uint256 current = allowed[msg.sender][spender];
        require(decrement <= current, "ERC20: decreased allowance below zero");
        unchecked {
            _approve(msg.sender, spender, current - decrement);
        }
        return true;
    }

    /// @notice Moves `value` tokens from the caller to `to`.
    /// @param to The recipient.
    /// @param value The amount.
    /// @return True.
    function transfer(address to, uint256 value)
        external
        whenNotPaused
        notBlacklisted(msg.sender)
        notBlacklisted(to)
        returns (bool)
    {
        _transfer(msg.sender, to, value);
        return true;
    }

    /// @notice Moves `value` tokens from `from` to `to` using the caller's allowance, which is always
    ///         decremented (USDC has no infinite-allowance special case).
    /// @param from The payer.
    /// @param to The recipient.
    /// @param value The amount.
    /// @return True.
    function transferFrom(address from, address to, uint256 value)
        external
        whenNotPaused
        notBlacklisted(msg.sender)
        notBlacklisted(from)
        notBlacklisted(to)
        returns (bool)
    {
        uint256 current = allowed[from][msg.sender];
        require(value <= current, "ERC20: transfer amount exceeds allowance");
        _transfer(from, to, value);
        unchecked {
            allowed[from][msg.sender] = current - value;
        }
        return true;
    }

    // ---------------------------------------------------------------------------------------------
    // Minting (owner acts as masterMinter)
    // ---------------------------------------------------------------------------------------------

    /// @notice Makes `minter` a minter allowed to mint up to `minterAllowedAmount` (replaces any previous
    ///         allowance). Owner only; refused while paused, as USDC.
    /// @param minter The minter.
    /// @param minterAllowedAmount Its minting allowance.
    function configureMinter(address minter, uint256 minterAllowedAmount)
        external
        whenNotPaused
        onlyMasterMinter
    {
        minters[minter] = true;
        minterAllowed[minter] = minterAllowedAmount;
        emit MinterConfigured(minter, minterAllowedAmount);
    }

    /// @notice Removes `minter` and zeroes its allowance. Owner only.
    /// @param minter The minter to remove.
    function removeMinter(address minter) external onlyMasterMinter {
        minters[minter] = false;
        minterAllowed[minter] = 0;
        emit MinterRemoved(minter);
    }

    /// @notice Whether `account` is a configured minter.
    /// @param account The account.
    /// @return True if it is a minter.
    function isMinter(address account) external view returns (bool) {
        return minters[account];
    }

    /// @notice Remaining minting allowance of `minter`.
    /// @param minter The minter.
    /// @return The remaining allowance.
    function minterAllowance(address minter) external view returns (uint256) {
        return minterAllowed[minter];
    }

    /// @notice Mints `amount` to `to`, using up as much of the caller's minter allowance.
    /// @param to The recipient.
    /// @param amount The amount, greater than 0.
    function mint(address to, uint256 amount)
        external
        whenNotPaused
        onlyMinters
        notBlacklisted(msg.sender)
        notBlacklisted(to)
    {
        require(to != address(0), "FiatToken: mint to the zero address");
        require(amount > 0, "FiatToken: mint amount not greater than 0");
        uint256 mintingAllowedAmount = minterAllowed[msg.sender];
        require(amount <= mintingAllowedAmount, "FiatToken: mint amount exceeds minterAllowance");

        totalSupply_ += amount;
        _setBalance(to, _balanceOf(to) + amount);
        unchecked {
            minterAllowed[msg.sender] = mintingAllowedAmount - amount;
        }
        emit Mint(msg.sender, to, amount);
        emit Transfer(address(0), to, amount);
    }

    /// @notice Burns `amount` of the calling minter's own balance.
    /// @param amount The amount, greater than 0.
    function burn(uint256 amount) external whenNotPaused onlyMinters notBlacklisted(msg.sender) {
        uint256 balance = _balanceOf(msg.sender);
        require(amount > 0, "FiatToken: burn amount not greater than 0");
        require(balance >= amount, "FiatToken: burn amount exceeds balance");
        unchecked {
            totalSupply_ -= amount;
            _setBalance(msg.sender, balance - amount);
        }
        emit Burn(msg.sender, amount);
        emit Transfer(msg.sender, address(0), amount);
    }

    // ---------------------------------------------------------------------------------------------
    // Pause (owner acts as pauser)
    // ---------------------------------------------------------------------------------------------

    /// @notice Pauses transfers, approvals, permits, authorizations, minting and burning. Owner only.
    function pause() external onlyPauser {
        paused = true;
        emit Pause();
    }

    /// @notice Lifts the pause. Owner only.
    function unpause() external onlyPauser {
        paused = false;
        emit Unpause();
    }

    // ---------------------------------------------------------------------------------------------
    // Blacklist (owner acts as blacklister)
    // ---------------------------------------------------------------------------------------------

    /// @notice Whether `account` is blacklisted.
    /// @param account The account.
    /// @return True if blacklisted.
    function isBlacklisted(address account) external view returns (bool) {
        return _isBlacklisted(account);
    }

    /// @notice Blacklists `account`: it can no longer send, receive, approve or be approved. Its balance
    ///         is kept. Owner only.
    /// @param account The account.
    function blacklist(address account) external onlyBlacklister {
        _setBlacklistState(account, true);
        emit Blacklisted(account);
    }

    /// @notice Removes `account` from the blacklist. Owner only.
    /// @param account The account.
    function unBlacklist(address account) external onlyBlacklister {
        _setBlacklistState(account, false);
        emit UnBlacklisted(account);
    }

    // ---------------------------------------------------------------------------------------------
    // Ownership
    // ---------------------------------------------------------------------------------------------

    /// @notice Hands every admin role to `newOwner`. Owner only.
    /// @param newOwner The new owner, not the zero address.
    function transferOwnership(address newOwner) external onlyOwner {
        require(newOwner != address(0), "Ownable: new owner is the zero address");
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    // ---------------------------------------------------------------------------------------------
    // EIP-2612
    // ---------------------------------------------------------------------------------------------

    /// @notice The EIP-712 domain separator (name, version, chain id, this contract).
    /// @return The domain separator.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice Sets `spender`'s allowance over `owner_`'s tokens to `value` with `owner_`'s signature.
    /// @param owner_ The token holder and signer.
    /// @param spender The spender.
    /// @param value The allowance.
    /// @param deadline Last valid timestamp (inclusive); type(uint256).max never expires.
    /// @param v Signature v.
    /// @param r Signature r.
    /// @param s Signature s.
    function permit(
        address owner_,
        address spender,
        uint256 value,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external whenNotPaused notBlacklisted(owner_) notBlacklisted(spender) {
        require(
            deadline == type(uint256).max || deadline >= block.timestamp, "FiatTokenV2: permit is expired"
        );
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, owner_, spender, value, _useNonce(owner_), deadline));
        require(_isValidSignature(owner_, structHash, v, r, s), "EIP2612: invalid signature");
        _approve(owner_, spender, value);
    }

    /// @notice Current permit nonce of `owner_`.
    /// @param owner_ The token holder.
    /// @return The nonce the next permit must sign.
    function nonces(address owner_) public view override returns (uint256) {
        return super.nonces(owner_);
    }

    // ---------------------------------------------------------------------------------------------
    // EIP-3009
    // ---------------------------------------------------------------------------------------------

    /// @notice Whether `authorizer`'s authorization `nonce` has been used or canceled.
    /// @param authorizer The signer.
    /// @param nonce The authorization nonce.
    /// @return True if used or canceled.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _authorizationStates[authorizer][nonce];
    }

    /// @notice Executes a transfer signed by `from`; anyone may submit it.
    /// @param from The payer and signer.
    /// @param to The recipient.
    /// @param value The amount.
    /// @param validAfter The authorization is valid only after this time (exclusive).
    /// @param validBefore The authorization is valid only before this time (exclusive).
    /// @param nonce Unique nonce chosen by the signer.
    /// @param v Signature v.
    /// @param r Signature r.
    /// @param s Signature s.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external whenNotPaused notBlacklisted(from) notBlacklisted(to) {
        _requireValidAuthorization(from, nonce, validAfter, validBefore);
        _requireValidSignature(
            from,
            keccak256(
                abi.encode(
                    TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce
                )
            ),
            v,
            r,
            s
        );
        _markAuthorizationAsUsed(from, nonce);
        _transfer(from, to, value);
    }

    /// @notice Executes a transfer signed by `from`; only the payee `to` may submit it (front-running
    ///         protection for deposits).
    /// @param from The payer and signer.
    /// @param to The recipient, which must be the caller.
    /// @param value The amount.
    /// @param validAfter The authorization is valid only after this time (exclusive).
    /// @param validBefore The authorization is valid only before this time (exclusive).
    /// @param nonce Unique nonce chosen by the signer.
    /// @param v Signature v.
    /// @param r Signature r.
    /// @param s Signature s.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external whenNotPaused notBlacklisted(from) notBlacklisted(to) {
        require(to == msg.sender, "FiatTokenV2: caller must be the payee");
        _requireValidAuthorization(from, nonce, validAfter, validBefore);
        _requireValidSignature(
            from,
            keccak256(
                abi.encode(
                    RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce
                )
            ),
            v,
            r,
            s
        );
        _markAuthorizationAsUsed(from, nonce);
        _transfer(from, to, value);
    }

    /// @notice Cancels `authorizer`'s unused authorization `nonce` with its signature.
    /// @param authorizer The signer.
    /// @param nonce The authorization nonce to cancel.
    /// @param v Signature v.
    /// @param r Signature r.
    /// @param s Signature s.
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s)
        external
        whenNotPaused
    {
        _requireUnusedAuthorization(authorizer, nonce);
        _requireValidSignature(
            authorizer, keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)), v, r, s
        );
        _authorizationStates[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    // ---------------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------------

    function _transfer(address from, address to, uint256 value) internal {
        require(from != address(0), "ERC20: transfer from the zero address");
        require(to != address(0), "ERC20: transfer to the zero address");
        uint256 fromBalance = _balanceOf(from);
        require(value <= fromBalance, "ERC20: transfer amount exceeds balance");
        unchecked {
            _setBalance(from, fromBalance - value);
        }
        _setBalance(to, _balanceOf(to) + value);
        emit Transfer(from, to, value);
    }

    function _approve(address owner_, address spender, uint256 value) internal {
        require(owner_ != address(0), "ERC20: approve from the zero address");
        require(spender != address(0), "ERC20: approve to the zero address");
        allowed[owner_][spender] = value;
        emit Approval(owner_, spender, value);
    }

    function _balanceOf(address account) internal view returns (uint256) {
        return balanceAndBlacklistStates[account] & BALANCE_MASK;
    }

    function _isBlacklisted(address account) internal view returns (bool) {
        return balanceAndBlacklistStates[account] & BLACKLIST_BIT != 0;
    }

    /// @dev As FiatTokenV2_2._setBalance: overwrites the whole word, so the account must not be
    ///      blacklisted (callers check it first; re-checked here as v2.2 does).
    function _setBalance(address account, uint256 balance) internal {
        require(balance <= BALANCE_MASK, "FiatTokenV2_2: Balance exceeds (2^255 - 1)");
        require(!_isBlacklisted(account), "FiatTokenV2_2: Account is blacklisted");
        balanceAndBlacklistStates[account] = balance;
    }

    function _setBlacklistState(address account, bool shouldBlacklist) internal {
        balanceAndBlacklistStates[account] =
            shouldBlacklist ? balanceAndBlacklistStates[account] | BLACKLIST_BIT : _balanceOf(account);
    }

    function _requireUnusedAuthorization(address authorizer, bytes32 nonce) internal view {
        require(!_authorizationStates[authorizer][nonce], "FiatTokenV2: authorization is used or canceled");
    }

    function _requireValidAuthorization(
        address authorizer,
        bytes32 nonce,
        uint256 validAfter,
        uint256 validBefore
    ) internal view {
        require(block.timestamp > validAfter, "FiatTokenV2: authorization is not yet valid");
        require(block.timestamp < validBefore, "FiatTokenV2: authorization is expired");
        _requireUnusedAuthorization(authorizer, nonce);
    }

    function _markAuthorizationAsUsed(address authorizer, bytes32 nonce) internal {
        _authorizationStates[authorizer][nonce] = true;
        emit AuthorizationUsed(authorizer, nonce);
    }

    function _requireValidSignature(address signer, bytes32 structHash, uint8 v, bytes32 r, bytes32 s)
        internal
        view
    {
        require(_isValidSignature(signer, structHash, v, r, s), "FiatTokenV2: invalid signature");
    }

    /// @dev ECDSA over the EIP-712 digest; malleable (high-s) or malformed signatures are invalid.
    function _isValidSignature(address signer, bytes32 structHash, uint8 v, bytes32 r, bytes32 s)
        internal
        view
        returns (bool)
    {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(_hashTypedDataV4(structHash), v, r, s);
        return err == ECDSA.RecoverError.NoError && recovered == signer;
    }
}
