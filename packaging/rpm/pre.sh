# warden %pre: the admin group exists before the D-Bus policy that names it.
getent group warden-admin >/dev/null || groupadd --system warden-admin
