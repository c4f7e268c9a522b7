# The pingpong image: a static Go binary on a distroless base, run as a non-root user.
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse --short HEAD) -t pingpong:dev .
#
# Base images are pinned by tag. They are not pinned by digest because the digests could not be
# checked from where this file was written (no registry access); to pin one, look it up with
# `docker buildx imagetools inspect IMAGE:TAG` and append `@sha256:...` to the tag.

# The build stage runs on the builder's own platform and cross-compiles for the target, so a
# multi-platform build (linux/amd64 + linux/arm64) needs no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26.8-alpine AS build
WORKDIR /src

# Modules first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .

ARG TARGETOS=linux
ARG TARGETARCH=amd64
# Stamped into the binary and shown by `pingpong version` and the pingpong_build_info metric.
ARG VERSION=dev
ARG COMMIT=unknown
# No cgo: a static binary that needs no libc in the runtime image.
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/pingpong/pingpong/app/buildinfo.Version=$VERSION -X github.com/pingpong/pingpong/app/buildinfo.Commit=$COMMIT" \
      -o /out/pingpong ./app

# distroless/static: CA certificates (for KAFKA_TLS_ENABLED), tzdata and /etc/passwd, no shell and
# no package manager. Its "nonroot" variant runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pingpong /usr/local/bin/pingpong
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
# /metrics, /healthz and /readyz (HTTP_ADDR, default :8080).
EXPOSE 8080
# Exec form: the binary checks itself over HTTP, no shell or curl needed. It reads HTTP_ADDR
# like the service does, so moving the port moves the check too.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/pingpong", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/pingpong"]
