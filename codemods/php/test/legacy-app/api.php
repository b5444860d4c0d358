<?php
// JSON endpoint: no header template, starts the session itself.
require 'includes/bootstrap.php';

session_start();
header('Content-Type: application/json');
echo json_encode(array(
    'handler' => ini_get('session.save_handler'),
    'session_id_length' => strlen(session_id()),
    'session' => $_SESSION,
));
