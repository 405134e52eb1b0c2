#!/bin/sh
# Creates the Secrets the dev overlay refers to, with random values, in a namespace (default
# fabrique-dev). Nothing secret is ever committed. Existing Secrets are left alone (the dev
# databases keep the password they were initialised with).
#
#   deploy/tools/dev-secrets.sh [namespace]
set -eu
ns="${1:-fabrique-dev}"

random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

exists() { kubectl -n "$ns" get secret "$1" >/dev/null 2>&1; }

kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns"

# The key of notifications' unsubscribe links (no service holds a token-signing secret: the
# services verify Keycloak's tokens with its published keys).
if exists notifications-unsubscribe; then
  echo "notifications-unsubscribe exists, kept"
else
  kubectl -n "$ns" create secret generic notifications-unsubscribe \
    --from-literal=unsubscribe-secret="$(random)"
fi

for service in inventory leasing notifications portal; do
  if exists "$service-db"; then
    echo "$service-db exists, kept"
    continue
  fi
  password="$(random)"
  kubectl -n "$ns" create secret generic "$service-db" \
    --from-literal=password="$password" \
    --from-literal=database-url="postgresql+asyncpg://$service:$password@$service-postgres:5432/$service"
done

# Leasing's account deleter: the secret of the realm's fabrique-privacy client. The dev overlay
# imports the realm as committed, whose development secret this is (in prod, copy the secret
# Keycloak generated: the client's Credentials tab).
exists leasing-idp-admin || kubectl -n "$ns" create secret generic leasing-idp-admin \
  --from-literal=client-secret=dev-fabrique-privacy-secret

# The key that signs the portal's web session and CSRF cookies.
if exists portal-session; then
  echo "portal-session exists, kept"
else
  kubectl -n "$ns" create secret generic portal-session --from-literal=session-secret="$(random)"
fi

# Keycloak: its database (the dev-postgres component's keycloak-postgres), its first
# administrator, and the realm's placeholders (Mailpit; ProConnect played by proconnect-sim).
if exists keycloak-db; then
  echo "keycloak-db exists, kept"
else
  kubectl -n "$ns" create secret generic keycloak-db --from-literal=username=keycloak \
    --from-literal=password="$(random)" --from-literal=host=keycloak-postgres \
    --from-literal=database=keycloak
fi
if exists keycloak-admin; then
  echo "keycloak-admin exists, kept"
else
  kubectl -n "$ns" create secret generic keycloak-admin --from-literal=username=admin \
    --from-literal=password="$(random)"
fi
exists keycloak-smtp || kubectl -n "$ns" create secret generic keycloak-smtp \
  --from-literal=host=mailpit --from-literal=port=1025
exists keycloak-proconnect || kubectl -n "$ns" create secret generic keycloak-proconnect \
  --from-literal=issuer=http://127.0.0.1:8080/realms/proconnect-sim \
  --from-literal=client-id=fabrique --from-literal=client-secret=dev-proconnect-secret \
  --from-literal=scopes="openid email profile"
