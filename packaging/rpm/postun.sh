# warden %postun: on erase, remove the state, and the admin group if no one
# is in it (removing it would quietly change what its members' gid means).
if [ "$1" -eq 0 ]; then
  rm -rf /var/lib/warden /run/warden
  if entry=$(getent group warden-admin); then
    members=$(echo "$entry" | cut -d: -f4)
    if [ -z "$members" ]; then
      groupdel warden-admin || :
    else
      echo "warden: keeping the group warden-admin: it still has members ($members)" >&2
    fi
  fi
fi
