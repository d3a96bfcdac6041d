# syntax=docker/dockerfile:1
#
# Gatehouse as a container image: one static binary (the server, its CLI verbs
# and the built-in plugins, which it runs as `gatehouse plugin NAME`), on a
# distroless base, as a non-root user.
#
#   make image                                   (podman, else docker)
#   podman build --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) -t gatehouse .
#
# .git is not sent to the build (.dockerignore), so the version and commit
# come in as build arguments; `gatehouse version` prints them.

ARG GO_VERSION=1.26

FROM docker.io/library/golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG COMMIT=
# CGO_ENABLED=0: a static binary that needs no libc in the final image.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/gatehouse ./cmd/gatehouse \
 && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w" \
      -o /out/gatehouse-plugin-oidc ./cmd/gatehouse-plugin-oidc \
 && mkdir -p /out/state

# distroless/static: CA certificates (Google, GitHub and OIDC providers over
# TLS), tzdata, /tmp (plugin sockets) and the nonroot user, uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
# The OpenID Connect plugin as its own binary, for `path:` plugin entries.
COPY --from=build /out/gatehouse-plugin-oidc /usr/local/lib/gatehouse/plugins/gatehouse-plugin-oidc
# Where a generated first admin key is written when GATEHOUSE_ADMIN_KEY is unset.
COPY --from=build --chown=65532:65532 /out/state /var/lib/gatehouse
USER 65532:65532
# Both listeners on every interface of the container: publish the admin port
# only where operators reach it (compose.yaml binds it to the host's loopback).
# Without GATEHOUSE_REDIS_URL the store is the embedded in-memory Redis.
ENV GATEHOUSE_ADMIN_ADDR=:9876 \
    GATEHOUSE_PUBLIC_ADDR=:8080 \
    GATEHOUSE_LOG_FORMAT=json \
    GATEHOUSE_ADMIN_KEY_FILE=/var/lib/gatehouse/admin-key \
    GATEHOUSE_PLUGIN_DIR=/usr/local/lib/gatehouse/plugins
EXPOSE 9876 8080
VOLUME ["/var/lib/gatehouse"]
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve"]
