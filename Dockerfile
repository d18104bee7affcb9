# Builds dexbridge and nxsim into one small image; compose.yaml picks the command.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/ ./cmd/...

FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /app
COPY --from=build /out/ /usr/local/bin/
COPY topics/ topics/
COPY config/ config/
USER nonroot
ENTRYPOINT ["/usr/local/bin/dexbridge"]
