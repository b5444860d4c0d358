<?php
// Admin area: same bootstrap, same header, one level down.
require_once dirname(__FILE__, 2) . '/includes/bootstrap.php';
require dirname(__DIR__) . '/includes/header.php';

if (empty($_SESSION['user'])) {
    http_response_code(403);
    echo "<p class=\"denied\">login first</p>\n";
    exit;
}
$_SESSION['admin_seen'] = true;
?>
<p class="admin">admin for <?= h($_SESSION['user']) ?>, visits=<?= (int) $_SESSION['visits'] ?></p>
