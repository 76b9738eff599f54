"""The component's export, found by componentize-py in the entry module
that ``sluice build`` generates. Not part of the public API."""

from wit_world import exports

import sluice


class Activity(exports.Activity):
    def run(self, input):
        return sluice._run(input)
