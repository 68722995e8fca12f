# syntax=docker/dockerfile:1
# Multi-stage build: a static gateway binary on a distroless base, run as a
# non-root user, with configs/ as the default configuration.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/gateway ./cmd/gateway

FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /app
COPY --from=build /out/gateway /usr/local/bin/gateway
COPY configs/ /app/configs/
USER nonroot:nonroot
EXPOSE 9595
# The admin server listens on loopback by default; in a container, set
# GATEWAY_ADMIN_LISTEN=0.0.0.0:9595 (and GATEWAY_ADMIN_TOKEN) to expose it.
ENTRYPOINT ["/usr/local/bin/gateway"]
CMD ["run", "--config", "/app/configs/gateway.yaml"]
