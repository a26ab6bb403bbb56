"""Bulk-loads a test domain through the local sam.ldb (system session) while samba is stopped.

Creates OU=Bulk with N users (bulk0..bulkN-1, spread over OU=Bulk and OU=Sub,OU=Bulk) and a
group CN=bulk-group whose members are all N users.

Usage: samba_bulk.py SMB_CONF SAM_LDB BASE_DN N
"""
import sys
import time

from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB

conf, url, base, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lp = LoadParm()
lp.load(conf)
db = SamDB(url=url, session_info=system_session(), lp=lp)
started = time.time()
ou = f"OU=Bulk,{base}"
sub = f"OU=Sub,{ou}"
db.add({"dn": ou, "objectClass": "organizationalUnit"})
db.add({"dn": sub, "objectClass": "organizationalUnit"})
members = []
# Small transactions: the cost of an add grows with the size of the open transaction.
CHUNK = 500
for i in range(n):
    if i % CHUNK == 0:
        db.transaction_start()
    parent = sub if i % 2 else ou
    dn = f"CN=bulk user {i},{parent}"
    db.add({
        "dn": dn,
        "objectClass": "user",
        "sAMAccountName": f"bulk{i}",
        "givenName": f"Given{i}",
        "sn": f"Surname{i}",
        "mail": f"bulk{i}@corp.example.com",
    })
    members.append(dn)
    if i % CHUNK == CHUNK - 1 or i == n - 1:
        db.transaction_commit()
db.add({"dn": f"CN=bulk-group,{ou}", "objectClass": "group", "sAMAccountName": "bulk-group",
        "member": members})
print(f"bulk-loaded {n} users and a {n}-member group in {time.time() - started:.1f} s")
