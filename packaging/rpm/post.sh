# warden %post: the admin group and the state directory; enabled on install
# only (an upgrade keeps the state and restarts). PAM is the admin's choice:
# see docs/authselect.md.
getent group warden-admin >/dev/null || groupadd --system warden-admin
install -d -m 0700 -o root -g root /var/lib/warden
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
  if [ "$1" -eq 1 ]; then
    systemctl enable --now wardend.service >/dev/null 2>&1 || :
  else
    systemctl try-restart wardend.service >/dev/null 2>&1 || :
  fi
fi
