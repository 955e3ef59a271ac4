# warden %postun: on erase, remove the state and the admin group.
if [ "$1" -eq 0 ]; then
  rm -rf /var/lib/warden /run/warden
  getent group warden-admin >/dev/null && groupdel warden-admin || :
fi
