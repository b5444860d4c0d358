<?php
// Third-party code: never rewritten by the codemod.
ini_set('session.save_handler', 'files');
