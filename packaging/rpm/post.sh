# warden %post: the state directory, and the service enabled on install only
# (an upgrade keeps the state and restarts). PAM is the admin's choice.
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
if [ "$1" -eq 1 ]; then
  cat <<'TEXT'
warden is installed and wardend is running, but no login uses it yet.
To guard logins, put pam_warden in an authselect custom profile:
  authselect create-profile warden -b local --symlink-meta --symlink-nsswitch --symlink-dconf
  cp /usr/share/doc/warden/authselect/system-auth /usr/share/doc/warden/authselect/password-auth /etc/authselect/custom/warden/
  authselect select custom/warden --force
Keep a root shell open while you test a login. With sssd, see
/usr/share/doc/warden/authselect.md. Check with: wardenctl doctor
TEXT
fi
