"""OAuth clients, token signing keys and revoked tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Identity, Index, Integer, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import Base


class OAuthClient(Base):
    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    client_id: Mapped[str] = mapped_column(Text, unique=True)
    # SHA-256 of a 256-bit random secret: a slow password hash buys nothing against a secret
    # with that much entropy and would make the token endpoint a CPU sink.
    secret_hash: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    partner_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("partners.id"), index=True, nullable=True
    )
    allowed_scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # A disabled client gets no tokens, and the tokens it has are refused (verifier).
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Bumped by every secret rotation and stamped into each token (`secret_version` claim):
    # tokens issued under an older secret are refused.
    secret_version: Mapped[int] = mapped_column(Integer, server_default="0")
    secret_rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # A member app (RFC 6749 section 2.1 public client): no secret (`secret_hash` is empty and
    # matches nothing), scope `member` only, and the exact redirect URIs it may send codes to.
    public: Mapped[bool] = mapped_column(Boolean, server_default="false")
    redirect_uris: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(Text, primary_key=True)
    algorithm: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSONB)
    # The private JWK, encrypted with the key-encryption key from settings (Fernet).
    private_jwk_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # A retired key signs nothing new but stays published until the tokens it signed expire.
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RevokedToken(Base):
    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(Text, primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuthorizationCode(Base):
    """A code handed to a member app's redirect URI (RFC 6749 section 4.1.2): single use, a minute
    long, bound to the client, the redirect URI, the member and the PKCE challenge. Only its
    SHA-256 is stored; a code presented twice revokes the tokens issued from it (`family_id`)."""

    __tablename__ = "oauth_authorization_codes"

    code_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    client_id: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(Text)
    member_id: Mapped[int] = mapped_column(BigInteger, index=True)
    code_challenge: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    family_id: Mapped[str | None] = mapped_column(Text, nullable=True)


class RefreshFamily(Base):
    """Every refresh token descending from one login (OAuth 2.0 Security BCP section 4.14.2):
    replaying a rotated member of the family revokes all of it."""

    __tablename__ = "oauth_refresh_families"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    client_id: Mapped[str] = mapped_column(Text)
    member_id: Mapped[int] = mapped_column(BigInteger, index=True)
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RefreshToken(Base):
    """One refresh token (its SHA-256), and the access token issued with it, whose id is revoked
    with the family."""

    __tablename__ = "oauth_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    family_id: Mapped[str] = mapped_column(Text, ForeignKey("oauth_refresh_families.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    access_jti: Mapped[str] = mapped_column(Text)
    access_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MemberTokenRevocation(Base):
    """Every token of the member issued at or before `revoked_before` is refused (erasure, "log
    out everywhere"): one row per member, however many tokens they held."""

    __tablename__ = "oauth_member_revocations"
    # Every gateway re-reads the recent ones each second (identity/verifier.py): one row per
    # member who ever changed a password, so without it each read scanned them all.
    __table_args__ = (Index("ix_oauth_member_revocations_revoked_before", "revoked_before"),)

    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    revoked_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
