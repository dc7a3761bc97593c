"""The LTI 1.3 Advantage tool adapter (launch, deep linking, AGS, NRPS): issue 5.

Empty until that issue lands: nothing here pretends to handle a launch yet.
"""
