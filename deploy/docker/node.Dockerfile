# moat-node, FROM scratch: the static binary, CA certificates, and
# /etc/passwd and /etc/group naming the non-root user it runs as (moat,
# uid and gid 65532). As non-root it runs on the userspace network stack
# (MOAT_NETSTACK=true) with the lockdown off (MOAT_LOCKDOWN=off): set both,
# as deploy/compose/compose.yaml and the Helm chart do. The build context
# is the one scripts/images.sh stages (`make images`).
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/moatmesh/moat
LABEL org.opencontainers.image.title="moat-node" \
      org.opencontainers.image.description="moat GPU node: serves models to the mesh through its guard" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY rootfs/ /
# The node's key, credential and audit spool: owned by moat, mount a
# volume here.
COPY --chown=65532:65532 state/ /var/lib/moat-node/
ENV MOAT_STATE_DIR=/var/lib/moat-node
WORKDIR /var/lib/moat-node
USER 65532:65532
EXPOSE 41641/udp
ENTRYPOINT ["/usr/local/bin/moat-node"]
CMD ["join"]
